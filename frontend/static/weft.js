// What every dashboard page adds with JavaScript, on top of pages that work without it:
// the organisation switcher in the header switches as soon as another organisation is
// chosen (without JavaScript, its Switch button sends the form). Loaded with `defer`
// from /static (the Content-Security-Policy allows no inline script).

(() => {
  'use strict';
  document.documentElement.classList.add('js');
  for (const form of document.querySelectorAll('form.switcher')) {
    const select = form.querySelector('select');
    const current = select.value;
    select.addEventListener('change', () => {
      if (select.value !== current) form.requestSubmit();
    });
  }
})();
