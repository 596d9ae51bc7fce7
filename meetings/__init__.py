"""The domain of Chi bộ trực tuyến: plain Python and SQLAlchemy, no HTTP, no WebSocket.

Dependencies point down only: ``app`` → ``realtime`` → ``meetings``. Nothing in this
package may import ``app`` or ``realtime`` (a test enforces it).
"""
