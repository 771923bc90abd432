// Draws every chart on the page from its JSON data block (see templates/_chart.html).
// Spec: {kind: "bar"|"line", categories: [...], series: {name: [numbers]}}
//    or {kind: "time", series: {name: [[day, value], ...]}}.
(function () {
  "use strict";
  function option(spec) {
    var names = Object.keys(spec.series);
    var base = {
      tooltip: { trigger: "axis" },
      legend: { top: 0, type: "scroll" },
      grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
      animation: false
    };
    if (spec.kind === "time") {
      base.xAxis = { type: "time" };
      base.yAxis = { type: "value", scale: true };
      base.series = names.map(function (n) {
        return { name: n, type: "line", showSymbol: true, data: spec.series[n] };
      });
      return base;
    }
    base.xAxis = { type: "category", data: spec.categories, axisLabel: { interval: "auto", hideOverlap: true } };
    base.yAxis = { type: "value", minInterval: 1 };
    base.series = names.map(function (n) {
      return { name: n, type: spec.kind, data: spec.series[n], label: { show: spec.kind === "bar", position: "top" } };
    });
    return base;
  }
  function draw() {
    if (typeof echarts === "undefined") { return; }
    var nodes = document.querySelectorAll("[data-chart]");
    var charts = [];
    nodes.forEach(function (node) {
      var data = document.getElementById(node.getAttribute("data-chart"));
      if (!data) { return; }
      var chart = echarts.init(node, null, { renderer: "canvas" });
      chart.setOption(option(JSON.parse(data.textContent)));
      node.setAttribute("data-rendered", "true");
      charts.push(chart);
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
