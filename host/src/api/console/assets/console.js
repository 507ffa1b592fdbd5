// bookhost console: the invocation list refreshes itself while "live" is
// checked and the tab is visible. Everything else is plain HTML.
"use strict";
(function () {
  const rows = document.getElementById("rows");
  const live = document.getElementById("live");
  if (!rows || !live || !rows.dataset.live) return;
  let busy = false;
  async function refresh() {
    if (busy || !live.checked || document.hidden) return;
    busy = true;
    try {
      const answer = await fetch(rows.dataset.live, { credentials: "same-origin" });
      // Signed out (sent to the sign-in page) or refused: stop. Anything
      // else (a host draining or restarting) is tried again next tick.
      if (answer.redirected || answer.status === 401 || answer.status === 403) {
        live.checked = false;
        return;
      }
      if (!answer.ok) return;
      rows.innerHTML = await answer.text();
      rows.dataset.refreshed = String(Number(rows.dataset.refreshed || 0) + 1);
    } catch (e) {
      // The host is away (restarting): try again at the next tick.
    } finally {
      busy = false;
    }
  }
  setInterval(refresh, 2000);
})();
