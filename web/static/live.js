// Live updates (progressive: every page works without this file).
// A page that names an event stream in <body data-events="..."> reloads when
// the server says something changed, unless the person is typing; then a
// notice offers the reload instead.
(function () {
  var url = document.body.getAttribute("data-events");
  if (!url || !window.EventSource) return;
  var source = new EventSource(url);
  source.addEventListener("changed", function () {
    var typing = Array.prototype.some.call(document.querySelectorAll("textarea"),
      function (el) { return el.value.length > 0; });
    if (!typing) { source.close(); window.location.reload(); return; }
    var notice = document.getElementById("live-notice");
    if (notice) { notice.hidden = false; }
  });
})();
