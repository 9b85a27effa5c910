// Sorting and filtering of the leaderboard table: vanilla JavaScript, no network access.
(function () {
  "use strict";
  var table = document.getElementById("leaderboard");
  var tbody = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var dataset = document.getElementById("filter-dataset");
  var trainScale = document.getElementById("filter-train-scale");
  var count = document.getElementById("shown-count");

  function cellValue(row, col, type) {
    var raw = row.cells[col].getAttribute("data-sort");
    if (raw === null || raw === "") { return null; }
    if (type === "num") { return parseFloat(raw); }
    return raw.toLowerCase();
  }

  function sortBy(col) {
    var th = headers[col];
    var type = th.getAttribute("data-type");
    var descending = th.getAttribute("aria-sort") === "ascending";
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.forEach(function (row, i) { row._order = i; });
    rows.sort(function (a, b) {
      var va = cellValue(a, col, type);
      var vb = cellValue(b, col, type);
      if (va === null && vb === null) { return a._order - b._order; }
      if (va === null) { return 1; }  // missing values last in either direction
      if (vb === null) { return -1; }
      var cmp = va < vb ? -1 : (va > vb ? 1 : 0);
      if (descending) { cmp = -cmp; }
      return cmp !== 0 ? cmp : a._order - b._order;
    });
    rows.forEach(function (row) { tbody.appendChild(row); });
  }

  function applyFilters() {
    var shown = 0;
    Array.prototype.forEach.call(tbody.rows, function (row) {
      var ok = (!dataset.value || row.getAttribute("data-dataset") === dataset.value) &&
        (!trainScale.value || row.getAttribute("data-train-scale") === trainScale.value);
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + tbody.rows.length + " entries";
  }

  headers.forEach(function (th, col) {
    var button = th.querySelector("button");
    if (button) { button.addEventListener("click", function () { sortBy(col); }); }
  });
  dataset.addEventListener("change", applyFilters);
  trainScale.addEventListener("change", applyFilters);
  applyFilters();
}());
