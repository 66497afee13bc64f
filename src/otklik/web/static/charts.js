// Draws every chart whose data sits in a <script type="application/json"> beside it.
(function () {
  function draw() {
    var el = document.getElementById("events-chart");
    var data = document.getElementById("events-data");
    if (!el || !data || !window.echarts) return;
    var series = JSON.parse(data.textContent);
    var chart = window.echarts.init(el);
    chart.setOption({
      grid: { left: 48, right: 16, top: 16, bottom: 40 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: series.hours, axisLabel: { interval: 23 } },
      yAxis: { type: "value", minInterval: 1 },
      series: [{ type: "bar", data: series.counts, itemStyle: { color: "#2b59c3" } }],
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
