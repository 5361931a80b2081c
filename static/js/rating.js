// Progressive enhancement for the rating forms (no dependencies, no build step).
//
// Without this script every control is a plain form that posts and redirects. With it:
// a star clicked is saved at once in the background (fetch + the form's CSRF token);
// with the keyboard, arrows move between half stars and Enter saves (or it saves by
// itself a moment after the last arrow press); the page updates in place and every
// recommendation panel on it ([data-panel-url]) is fetched again. If the server answers
// anything but JSON (say, a login redirect), the form is submitted the plain way.
//
// Two controls (recommendations/templatetags/rating_controls.py): the full one is a
// radio group; the compact one on cards is a <select> (kept for the keyboard and screen
// readers, visually hidden) beside a star meter [data-star-meter] that takes the pointer:
// the half star under it is worked out from where it is.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  var KEYBOARD_DELAY_MS = 1200;
  var lastPointer = 0;
  var timers = new WeakMap();

  var TOAST_MS = 6000;
  var toastTimer = null;
  function announce(text) {
    var region = document.getElementById("live-messages");
    if (!region) return;
    region.textContent = "";
    var p = document.createElement("p");
    p.className = "message";
    p.textContent = text;
    region.appendChild(p);
    // The region sits at the top of the page; a rating made further down would confirm
    // out of view (on a phone most of all), so for a while it floats at the bottom.
    region.classList.add("is-toast");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () {
      region.classList.remove("is-toast");
    }, TOAST_MS);
  }

  // --- the compact control's star meter
  function meterFill(form, score) {
    var fill = form.querySelector(".star-fill");
    if (fill) fill.className = "star-fill s" + Math.round(Number(score || 0) * 2);
  }

  function meterScore(meter, event) {
    var box = meter.getBoundingClientRect();
    var halves = Math.ceil(((event.clientX - box.left) / box.width) * 10);
    return Math.min(10, Math.max(1, halves)) / 2;
  }

  function selectedScore(form) {
    var select = form.querySelector(".star-select");
    if (select) return select.value;
    var radio = form.querySelector(".star-input:checked");
    return radio ? radio.value : "";
  }

  function post(form) {
    return fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value,
      },
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") !== 0) {
        throw new Error("not json");
      }
      return response.json().then(function (data) {
        return { ok: response.ok, data: data };
      });
    });
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function formatScore(score) {
    return String(Number(score)).replace(/\.0$/, "");
  }

  function updateItem(data) {
    var id = String(data.item);
    document.querySelectorAll('[data-item-stats="' + id + '"]').forEach(function (el) {
      el.innerHTML = "";
      if (data.count) {
        el.append("Average ");
        var avg = document.createElement("strong");
        avg.textContent = data.average.toFixed(2);
        var count = document.createElement("strong");
        count.textContent = data.count;
        el.append(avg, " from ", count, " rating" + (data.count === 1 ? "" : "s"));
      } else {
        el.textContent = "No ratings yet — be the first.";
      }
    });
    document.querySelectorAll('[data-my-rating-text="' + id + '"]').forEach(function (el) {
      if (data.score === null) {
        el.textContent = "You have not rated this yet. Pick a number of stars.";
      } else {
        el.innerHTML = "";
        var s = document.createElement("strong");
        s.textContent = formatScore(data.score);
        el.append("You rated this ", s, ".");
      }
    });
    document.querySelectorAll('form[data-rating-form][data-item="' + id + '"]').forEach(function (f) {
      f.querySelectorAll(".star-input").forEach(function (input) {
        input.checked = data.score !== null && Number(input.value) === Number(data.score);
      });
      var select = f.querySelector(".star-select");
      if (select) select.value = data.score === null ? "" : formatScore(data.score);
      meterFill(f, data.score);
      var status = f.querySelector("[data-rating-status]");
      if (status) {
        status.textContent = data.score === null ? "" : "You rated " + formatScore(data.score);
      }
      f.classList.remove("is-saving");
    });
    document.querySelectorAll('form[data-remove-form][data-item="' + id + '"]').forEach(function (f) {
      var row = f.closest("[data-card-item]");
      if (row && data.score === null) {
        row.remove(); // a row of "My ratings": the rating is gone
      } else {
        f.hidden = data.score === null;
      }
    });
    if (typeof data.my_rating_count === "number") {
      document.querySelectorAll("[data-my-rating-count]").forEach(function (el) {
        el.textContent = data.my_rating_count;
      });
      document.querySelectorAll("[data-my-rating-count-text]").forEach(function (el) {
        el.textContent = "You have rated " + plural(data.my_rating_count, "item") + ".";
      });
      var strip = document.querySelector("[data-onboarding]");
      if (strip && data.my_rating_count >= Number(strip.dataset.target)) {
        strip.classList.add("is-done");
        var progress = strip.querySelector("[data-onboarding-progress]");
        if (progress) progress.textContent = "Done: your suggestions are below.";
      }
    }
    announce(data.message);
    followUps = 0;
    refreshPanels();
  }

  // A worker folds each rating into the model a moment after it is saved; a panel still
  // showing its fallback ("popular", or "content": a starter list from genres and
  // items like yours) right after a rating is fetched again a little later.
  var FOLLOW_UP_MS = [1500, 4000];
  var followUps = FOLLOW_UP_MS.length;
  var FALLBACK = '[data-panel-url][data-source="popular"], [data-panel-url][data-source="content"]';
  function followUp() {
    if (followUps >= FOLLOW_UP_MS.length) return;
    if (!document.querySelector(FALLBACK)) return;
    setTimeout(refreshPanels, FOLLOW_UP_MS[followUps]);
    followUps += 1;
  }

  var refreshing = null;
  // Fetch a panel's fragment again and put it in the panel's place; resolves to the
  // element now on the page. Shared with panels.js (window.Recsite.fetchPanel).
  function fetchPanel(panel) {
    return fetch(panel.dataset.panelUrl, {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("panel " + response.status);
        return response.text();
      })
      .then(function (html) {
        var t = document.createElement("template");
        t.innerHTML = html.trim();
        var fresh = t.content.firstElementChild;
        if (fresh && panel.isConnected) {
          panel.replaceWith(fresh);
          return fresh;
        }
        return panel;
      });
  }
  window.Recsite = { fetchPanel: fetchPanel };

  function refreshPanels() {
    // One refresh at a time; a rating made meanwhile triggers one more afterwards.
    if (refreshing) {
      refreshing.again = true;
      return;
    }
    refreshing = { again: false };
    var panels = Array.prototype.slice.call(document.querySelectorAll("[data-panel-url]"));
    Promise.all(
      panels.map(function (panel) {
        panel.setAttribute("aria-busy", "true");
        return fetchPanel(panel).catch(function () {
          panel.removeAttribute("aria-busy");
        });
      })
    ).then(function () {
      var again = refreshing.again;
      refreshing = null;
      document.dispatchEvent(new CustomEvent("panels:refreshed"));
      if (again) {
        refreshPanels();
      } else {
        followUp();
      }
    });
  }

  function save(form) {
    clearTimeout(timers.get(form));
    if (form.dataset.ratingForm !== undefined && !selectedScore(form)) {
      return;
    }
    form.classList.add("is-saving");
    var status = form.querySelector("[data-rating-status]");
    if (status) status.textContent = "Saving…";
    post(form)
      .then(function (result) {
        if (result.ok) {
          if (form.matches("[data-hide-form]")) {
            var card = form.closest("[data-card-item]");
            if (card) card.remove();
            announce(result.data.message);
            refreshPanels();
          } else {
            updateItem(result.data);
          }
        } else {
          form.classList.remove("is-saving");
          if (status) status.textContent = result.data.error || "That did not work; try again.";
          announce(result.data.error || "That did not work; try again.");
        }
      })
      .catch(function () {
        // Not JSON (e.g. a login page) or offline: fall back to the plain form post.
        HTMLFormElement.prototype.submit.call(form);
      });
  }

  document.addEventListener(
    "pointerdown",
    function (event) {
      if (event.target.closest(".star-row")) lastPointer = Date.now();
    },
    true
  );

  document.addEventListener("pointermove", function (event) {
    var meter = event.target.closest && event.target.closest("[data-star-meter]");
    if (!meter) return;
    meter.classList.add("is-preview");
    meterFill(meter.closest("form"), meterScore(meter, event));
  });

  document.addEventListener(
    "pointerout",
    function (event) {
      var meter = event.target.closest && event.target.closest("[data-star-meter]");
      if (!meter || meter.contains(event.relatedTarget)) return;
      var form = meter.closest("form");
      meter.classList.remove("is-preview");
      meterFill(form, selectedScore(form));
    },
    true
  );

  document.addEventListener("click", function (event) {
    var meter = event.target.closest && event.target.closest("[data-star-meter]");
    if (!meter) return;
    var form = meter.closest("form");
    form.querySelector(".star-select").value = formatScore(meterScore(meter, event));
    meter.classList.remove("is-preview");
    meterFill(form, selectedScore(form));
    save(form);
  });

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.classList) return;
    var isSelect = input.classList.contains("star-select");
    if (!isSelect && !input.classList.contains("star-input")) return;
    var form = input.form;
    if (isSelect) meterFill(form, input.value);
    if (!isSelect && Date.now() - lastPointer < 1000) {
      save(form);
    } else {
      // Arrow keys step through every half star: wait until the user settles.
      clearTimeout(timers.get(form));
      var status = form.querySelector("[data-rating-status]");
      if (!input.value) return;
      var stars = formatScore(input.value) + (Number(input.value) === 1 ? " star" : " stars");
      if (status) status.textContent = stars + ": press Enter to save";
      timers.set(
        form,
        setTimeout(function () {
          save(form);
        }, KEYBOARD_DELAY_MS)
      );
    }
  });

  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (event.key !== "Enter" || !input.classList) return;
    if (input.classList.contains("star-select")) {
      event.preventDefault();
      save(input.form);
      return;
    }
    if (!input.classList.contains("star-input")) return;
    event.preventDefault();
    if (!input.checked) input.checked = true;
    save(input.form);
  });

  // A link in a form's error summary (templates/registration/_form.html) puts the focus in
  // the field it names; a link alone only scrolls there.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".form-errors a[href^='#']");
    var field = link && document.getElementById(link.getAttribute("href").slice(1));
    if (!field) return;
    event.preventDefault();
    field.focus();
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches("[data-rating-form], [data-remove-form], [data-hide-form]")) {
      event.preventDefault();
      save(form);
    }
  });
})();
