// Keyboard navigation (progressive: every page works without this file).
// Inbox: j/k move between conversations, Enter or o opens, x ticks one for a
// bulk action, / searches. Conversation: r reply, n private note, u back to
// the inbox. ? shows the list. Keys never act while typing in a field, and
// single-key shortcuts can be turned off (WCAG 2.1.4): the choice is kept in
// this browser.
(function () {
  var page = document.body.getAttribute("data-keys");
  if (!page) return;
  var OFF = "roundtable-keys-off";
  var off = false;
  try { off = window.localStorage.getItem(OFF) === "1"; } catch (e) { /* storage blocked */ }
  var toggle = document.getElementById("keys-off");
  if (toggle) {
    toggle.checked = off;
    toggle.addEventListener("change", function () {
      off = toggle.checked;
      try { window.localStorage.setItem(OFF, off ? "1" : "0"); } catch (e) { /* storage blocked */ }
    });
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll("#conversation-list > li"));
  var current = -1;

  function select(i) {
    if (!rows.length) return;
    i = Math.max(0, Math.min(rows.length - 1, i));
    if (current >= 0 && rows[current]) rows[current].classList.remove("current");
    current = i;
    rows[i].classList.add("current");
    var link = rows[i].querySelector("a.subject");
    if (link) link.focus();
  }

  // Moving with Tab keeps j/k in step with where the focus is.
  rows.forEach(function (row, i) {
    row.addEventListener("focusin", function () {
      if (current >= 0 && rows[current]) rows[current].classList.remove("current");
      current = i;
      row.classList.add("current");
    });
  });

  function focus(id) {
    var el = document.getElementById(id);
    if (el) { el.focus(); return true; }
    return false;
  }

  document.addEventListener("keydown", function (ev) {
    if (off || ev.ctrlKey || ev.metaKey || ev.altKey || ev.defaultPrevented) return;
    var t = ev.target;
    var tag = t && t.tagName ? t.tagName.toLowerCase() : "";
    if (tag === "input" || tag === "textarea" || tag === "select" || (t && t.isContentEditable)) return;
    var handled = true;
    switch (ev.key) {
      case "?":
        var help = document.getElementById("shortcuts");
        if (help) { help.open = true; help.querySelector("summary").focus(); }
        break;
      case "j": if (page === "inbox") select(current + 1); else handled = false; break;
      case "k": if (page === "inbox") select(current < 0 ? 0 : current - 1); else handled = false; break;
      case "o":
        if (page === "inbox" && current >= 0) rows[current].querySelector("a.subject").click(); else handled = false;
        break;
      case "x":
        if (page === "inbox" && current >= 0) {
          var box = rows[current].querySelector("input.pick");
          if (box) box.checked = !box.checked;
        } else handled = false;
        break;
      case "/": handled = focus("f-q"); break;
      case "r": handled = page === "conversation" && focus("reply-text"); break;
      case "n": handled = page === "conversation" && focus("note-text"); break;
      case "u":
        var back = document.body.getAttribute("data-back");
        if (page === "conversation" && back) window.location.assign(back); else handled = false;
        break;
      default: handled = false;
    }
    if (handled) ev.preventDefault();
  });
})();
