// The queue pages' keyboard and focus. After an action the server sends the browser back to the list at
// #c-<id> (the candidate after the one acted on): that candidate is selected and focused, where the list was
// scrolled before, so the keys go on from there. On the pending page: j/k move the selection, a approves,
// r rejects, e opens the edit box in place, x ticks for the bulk buttons (or "Tick all"), Esc leaves a field.
"use strict";
(function () {
  var SCROLL_KEY = "nnbot-scroll";  // sessionStorage: where the list was scrolled when a form left it
  var index = -1;

  function items() {
    return Array.prototype.slice.call(document.querySelectorAll("article.candidate"));
  }

  function mark(list) {
    list.forEach(function (element, n) {
      element.classList.toggle("selected", n === index);
      if (n === index) {
        element.setAttribute("aria-current", "true");
      } else {
        element.removeAttribute("aria-current");
      }
    });
  }

  function select(next) {
    var list = items();
    if (!list.length) {
      return;
    }
    index = Math.max(0, Math.min(next, list.length - 1));
    mark(list);
    list[index].focus({ preventScroll: true });
    list[index].scrollIntoView({ block: "nearest" });
  }

  function current() {
    return items()[index] || null;
  }

  // Back from an action: keep the list where it was (the rows below moved up by one) and go on from #c-<id>.
  function resume() {
    var saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(SCROLL_KEY) || "null");
      sessionStorage.removeItem(SCROLL_KEY);
    } catch (error) {
      saved = null;  // storage refused (private mode, policy): the browser's own scroll to #c-<id> stands
    }
    var match = /^#c-(\d+)$/.exec(location.hash);
    var target = match && document.getElementById("c-" + match[1]);
    if (!target || !target.matches("article.candidate")) {
      return;
    }
    var here = saved && saved.path === location.pathname + location.search;
    var settle = function () {
      if (here) {
        window.scrollTo(0, saved.y);
      }
      select(items().indexOf(target));
      var opened = target.querySelector("details.edit[open] textarea");
      if (opened) {
        opened.focus({ preventScroll: true });  // a refused edit: its box is open again with the draft, to fix
      }
    };
    settle();
    // The browser scrolls to #c-<id> and focuses it, and may again while the page loads: settle once more after.
    if (document.readyState === "complete") {
      requestAnimationFrame(settle);
    } else {
      window.addEventListener("load", function () { requestAnimationFrame(settle); }, { once: true });
    }
  }

  document.addEventListener("submit", function (event) {
    if (!event.target.closest || !event.target.closest("section.bot, article.candidate")) {
      return;
    }
    try {
      sessionStorage.setItem(SCROLL_KEY, JSON.stringify({ path: location.pathname + location.search,
                                                          y: window.scrollY }));
    } catch (error) {
      // no storage: the page opens at the candidate instead
    }
  });

  // Clicking or tabbing into a candidate selects it, so the keys act on what the person is looking at.
  document.addEventListener("focusin", function (event) {
    var article = event.target.closest && event.target.closest("article.candidate");
    if (!article) {
      return;
    }
    var list = items();
    var found = list.indexOf(article);
    if (found >= 0 && found !== index) {
      index = found;
      mark(list);
    }
  });

  resume();
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      resume();
    }
  });

  if (document.body.dataset.page !== "pending") {
    return;
  }

  function press(action) {
    var element = current();
    var button = element && element.querySelector('button[name="action"][value="' + action + '"]');
    if (button) {
      button.click();
    }
  }

  function edit() {
    var element = current();
    if (!element) {
      return;
    }
    var details = element.querySelector("details.edit");
    if (details) {
      details.open = true;
    }
    var text = element.querySelector('textarea[name="text"]');
    if (text) {
      text.focus();
      text.setSelectionRange(text.value.length, text.value.length);
    }
  }

  function tick() {
    var element = current();
    var box = element && element.querySelector("input.tick");
    if (box) {
      box.checked = !box.checked;
      box.dispatchEvent(new Event("change"));  // the bot's "Tick all" follows
    }
  }

  // "Tick all" per bot (shown only where this script runs): ticks or unticks every row of that bot's bulk form, and
  // shows whether all, some or none of them are ticked as the rows are ticked one by one.
  function rowsOf(form) {
    return Array.prototype.slice.call(document.querySelectorAll('input.tick[form="' + form + '"]'));
  }

  function showTicked(all) {
    var rows = rowsOf(all.dataset.form);
    var ticked = rows.filter(function (box) { return box.checked; }).length;
    all.checked = rows.length > 0 && ticked === rows.length;
    all.indeterminate = ticked > 0 && ticked < rows.length;
  }

  Array.prototype.forEach.call(document.querySelectorAll("label.tick-all"), function (label) {
    var all = label.querySelector("input");
    label.hidden = false;
    all.addEventListener("change", function () {
      rowsOf(all.dataset.form).forEach(function (box) { box.checked = all.checked; });
    });
    rowsOf(all.dataset.form).forEach(function (box) {
      box.addEventListener("change", function () { showTicked(all); });
    });
    showTicked(all);
  });

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    var target = event.target;
    if (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) {
      if (event.key === "Escape") {
        target.blur();
        var article = target.closest && target.closest("article.candidate");
        if (article) {
          article.focus({ preventScroll: true });  // back on the row, so j/k/a/r go on from it
        }
      }
      return;
    }
    var actions = {
      j: function () { select(index + 1); },
      k: function () { select(index < 0 ? 0 : index - 1); },
      a: function () { press("approve"); },
      r: function () { press("reject"); },
      e: edit,
      x: tick
    };
    if (!actions[event.key]) {
      return;
    }
    event.preventDefault();
    actions[event.key]();
  });
})();
