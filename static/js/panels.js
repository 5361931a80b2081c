// Panels that are on their way keep checking by themselves (no dependencies, no build).
//
// A panel rendered with [data-pending] says suggestions are being prepared: no model is
// published yet (a fresh install computes its first one), Redis is briefly away, or the
// user's latest ratings are being added to the model. This script fetches such a panel
// again with a backoff (2 s, growing to 15 s, for up to 5 minutes) until it is not
// pending any more, then fetches every other panel on the page once, so "Because you
// rated" fills in too. The page never reloads. rating.js replaces panels after a rating
// and fires "panels:refreshed"; a pending panel it brings starts the checking again.
//
// It also keeps the onboarding strip's progress line true: "Done: your suggestions are
// below" only when they are.
(function () {
  "use strict";

  var FIRST_MS = 2000;
  var FACTOR = 1.5;
  var MAX_MS = 15000;
  var GIVE_UP_MS = 5 * 60 * 1000;

  var timer = null;
  var delay = FIRST_MS;
  var started = 0;

  function pendingPanel() {
    return document.querySelector("[data-panel-url][data-pending]");
  }

  // rating.js (loaded first, by base.html) owns the fetch-and-replace of a panel.
  var fetchPanel = window.Recsite.fetchPanel;

  function refreshOthers(except) {
    var others = Array.prototype.slice
      .call(document.querySelectorAll("[data-panel-url]"))
      .filter(function (panel) {
        return panel !== except;
      });
    return Promise.all(
      others.map(function (panel) {
        return fetchPanel(panel).catch(function () {});
      })
    );
  }

  function check() {
    timer = null;
    var panel = pendingPanel();
    if (!panel) return;
    fetchPanel(panel)
      .then(function (fresh) {
        if (fresh.hasAttribute("data-pending")) {
          schedule();
          return;
        }
        return refreshOthers(fresh).then(function () {
          updateOnboarding(true);
          document.dispatchEvent(new CustomEvent("panels:arrived"));
          schedule(); // another panel may still be on its way
        });
      })
      .catch(schedule);
  }

  function schedule() {
    if (timer || !pendingPanel()) return;
    if (Date.now() - started > GIVE_UP_MS) {
      document.querySelectorAll("[data-panel-url][data-pending]").forEach(function (panel) {
        var note = panel.querySelector("[data-pending-note]");
        if (note) note.textContent = note.dataset.pendingNote;
      });
      return;
    }
    timer = setTimeout(check, delay);
    delay = Math.min(delay * FACTOR, MAX_MS);
  }

  function start() {
    if (timer) return;
    started = Date.now();
    delay = FIRST_MS;
    schedule();
  }

  // -- the onboarding strip -------------------------------------------------------------
  var progressText = {};

  function updateOnboarding(fresh) {
    var strip = document.querySelector("[data-onboarding]");
    if (!strip) return;
    var progress = strip.querySelector("[data-onboarding-progress]");
    var count = strip.querySelector("[data-my-rating-count]");
    if (!progress) return;
    // rating.js replaces the count with its own line only once the target is reached.
    if (count && !(Number(count.textContent) >= Number(strip.dataset.target))) return;
    var panel = document.getElementById("panel-people-like-you");
    var text;
    if (panel && panel.dataset.source === "personal") {
      text = strip.dataset.textReady;
    } else if (!panel || panel.hasAttribute("data-pending") || !fresh) {
      // Not refreshed since the last rating yet: its answer is on the way.
      text = strip.dataset.textPending;
    } else {
      text = strip.dataset.textRateMore;
    }
    progressText.value = text;
    if (text && progress.textContent !== text) progress.textContent = text;
  }

  function watchOnboarding() {
    var progress = document.querySelector("[data-onboarding] [data-onboarding-progress]");
    if (!progress || !window.MutationObserver) return;
    // rating.js writes its own "Done" line the moment the target is reached, before the
    // panels are fetched again: put the true one in its place at once.
    new MutationObserver(function () {
      if (progress.textContent !== progressText.value) updateOnboarding(false);
    }).observe(progress, { childList: true, characterData: true, subtree: true });
  }

  document.addEventListener("panels:refreshed", function () {
    updateOnboarding(true);
    start();
  });

  watchOnboarding();
  start();
})();
