
// The review list's filter: a row stays when it holds the text (any case) and, with reasons
// ticked, at least one of them. No network, nothing stored; without it every row is shown.
(function () {
  var form = document.getElementById("review-filter");
  var text = document.getElementById("review-text");
  var count = document.getElementById("review-count");
  var rows = document.querySelectorAll("#review-rows tr[data-reasons]");
  var boxes = form.querySelectorAll("input[name=reason]");
  function apply() {
    var needle = text.value.trim().toLowerCase();
    var ticked = Array.prototype.filter.call(boxes, function (b) { return b.checked; })
      .map(function (b) { return b.value; });
    var shown = 0;
    rows.forEach(function (row) {
      var reasons = row.getAttribute("data-reasons").split(" ");
      var keep = (!needle || row.textContent.toLowerCase().indexOf(needle) >= 0) &&
        (!ticked.length || ticked.some(function (r) { return reasons.indexOf(r) >= 0; }));
      row.hidden = !keep;
      shown += keep ? 1 : 0;
    });
    count.textContent = shown + " of " + rows.length + " rows shown";
  }
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  form.hidden = false;
  apply();
})();
