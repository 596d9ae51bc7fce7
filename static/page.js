// Small behaviours every page may use, kept out of the HTML because the Content-Security-Policy
// allows no inline script (docs/security.md):
//   <form data-confirm="Xóa …?">    asks before submitting
//   <input data-select-on-focus>     selects its text when clicked (a link to copy)
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
document.addEventListener("click", (event) => {
  const input = event.target;
  if (input instanceof HTMLInputElement && input.hasAttribute("data-select-on-focus")) input.select();
});
