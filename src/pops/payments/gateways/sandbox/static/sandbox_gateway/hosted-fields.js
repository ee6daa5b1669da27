// Sandbox gateway: hosted card fields and simulated wallet sheets.
// Both pages may be framed only by POPS's own origin (CSP frame-ancestors 'self'), so the
// parent's origin is this page's origin: every message goes to exactly that origin, and only
// messages from it are obeyed. Card data never leaves this page except to the token endpoint.
(function () {
  "use strict";

  var ORIGIN = window.location.origin;
  var form = document.querySelector("[data-sandbox-page]");
  if (!form) return;
  var target = window.opener || (window.parent !== window ? window.parent : null);

  function tell(message) {
    if (target) target.postMessage(message, ORIGIN);
  }

  function showErrors(box, errors) {
    box.textContent = errors.map(function (e) { return e.message; }).join(" ");
    box.hidden = errors.length === 0;
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    }).then(function (response) {
      return response.json().then(function (data) {
        return { ok: response.ok, data: data };
      });
    }, function () {
      return { ok: false, data: { errors: [{ path: "", message: "The gateway could not be reached." }] } };
    });
  }

  function hostedFields() {
    var number = document.getElementById("card-number");
    var exp = document.getElementById("card-exp");
    var cvv = document.getElementById("card-cvv");
    var errors = document.getElementById("card-errors");
    var inputs = { card_number: number, exp: exp, cvv: cvv };
    var busy = false;

    exp.addEventListener("input", function () {
      var digits = exp.value.replace(/\D/g, "").slice(0, 4);
      exp.value = digits.length > 2 ? digits.slice(0, 2) + "/" + digits.slice(2) : digits;
    });

    function tokenize() {
      if (busy) return;
      busy = true;
      Object.keys(inputs).forEach(function (k) { inputs[k].removeAttribute("aria-invalid"); });
      post(form.dataset.tokensUrl, {
        card_number: number.value, exp: exp.value, cvv: cvv.value,
      }).then(function (result) {
        busy = false;
        if (result.ok) {
          showErrors(errors, []);
          number.value = ""; exp.value = ""; cvv.value = "";
          tell({ type: "sandbox-gateway:token", token: result.data.token });
          return;
        }
        var list = (result.data && result.data.errors) || [{ path: "", message: "Check the card details." }];
        list.forEach(function (e) { if (inputs[e.path]) inputs[e.path].setAttribute("aria-invalid", "true"); });
        showErrors(errors, list);
        tell({ type: "sandbox-gateway:error", errors: list });
      });
    }

    form.addEventListener("submit", function (event) { event.preventDefault(); tokenize(); });
    window.addEventListener("message", function (event) {
      if (event.origin !== ORIGIN || event.source !== window.parent) return;
      if (event.data && event.data.type === "sandbox-gateway:tokenize") tokenize();
    });
    tell({ type: "sandbox-gateway:ready" });
  }

  function walletSheet() {
    var wallet = form.dataset.wallet;
    var errors = document.getElementById("wallet-errors");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var chosen = form.querySelector("input[name=card]:checked");
      post(form.dataset.tokensUrl, { card: chosen ? chosen.value : "approved" }).then(function (result) {
        if (!result.ok) { showErrors(errors, result.data.errors || []); return; }
        tell({ type: "sandbox-gateway:wallet", wallet: wallet, payload: result.data.payload });
        if (window.opener) window.close();
      });
    });
    document.getElementById("wallet-cancel").addEventListener("click", function () {
      tell({ type: "sandbox-gateway:wallet-cancelled", wallet: wallet });
      if (window.opener) window.close();
    });
  }

  if (form.dataset.sandboxPage === "hosted-fields") hostedFields();
  else if (form.dataset.sandboxPage === "wallet-sheet") walletSheet();
})();
