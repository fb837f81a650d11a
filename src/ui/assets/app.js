// gaffer's dashboard: live updates through EventSource. Every page reads without this.
(function () {
  "use strict";
  if (!window.EventSource) { return; }
  var live = document.querySelector(".live");

  // The runs list: the server sends the rows (rendered and escaped by the server) whenever
  // a run changes.
  var rows = document.getElementById("runs-body");
  if (rows && rows.dataset.live) {
    var list = new EventSource(rows.dataset.live);
    list.addEventListener("rows", function (e) {
      rows.innerHTML = e.data;
      if (live) { live.textContent = "live: updated " + new Date().toLocaleTimeString(); }
    });
    list.addEventListener("open", function () {
      if (live) { live.textContent = "live"; }
    });
  }

  // A run's page: its progress lines as they happen, then the finished page.
  var steps = document.getElementById("steps");
  if (steps && steps.dataset.live) {
    var seen = 0;
    Array.prototype.forEach.call(steps.querySelectorAll("li[data-seq]"), function (li) {
      seen = Math.max(seen, Number(li.dataset.seq));
    });
    var run = new EventSource(steps.dataset.live);
    run.addEventListener("progress", function (e) {
      var seq = Number(e.lastEventId);
      if (seq && seq <= seen) { return; }
      seen = seq || seen;
      var li = document.createElement("li");
      li.dataset.seq = String(seq);
      li.textContent = e.data;
      steps.appendChild(li);
      if (live) { live.textContent = "live"; }
    });
    run.addEventListener("end", function (e) {
      run.close();
      var state = document.getElementById("run-state");
      try {
        var end = JSON.parse(e.data);
        if (state) { state.textContent = end.state; state.className = "badge state-" + end.state; }
      } catch (ignored) { /* the reload shows it */ }
      if (live) { live.textContent = "finished: loading the outcome"; }
      window.setTimeout(function () { window.location.reload(); }, 300);
    });
  }
})();
