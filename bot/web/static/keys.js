// Keyboard shortcuts for the pending page: j/k move the selection, a approves, r rejects, e edits, Esc leaves a field.
"use strict";
(function () {
  if (document.body.dataset.page !== "pending") {
    return;
  }
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
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    var target = event.target;
    if (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) {
      if (event.key === "Escape") {
        target.blur();
      }
      return;
    }
    var actions = {
      j: function () { select(index + 1); },
      k: function () { select(index < 0 ? 0 : index - 1); },
      a: function () { press("approve"); },
      r: function () { press("reject"); },
      e: edit
    };
    if (!actions[event.key]) {
      return;
    }
    event.preventDefault();
    actions[event.key]();
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
})();
