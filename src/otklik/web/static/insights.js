// The RFM heatmap, drawn from the grid table on the page (the table stays as the fallback:
// without JavaScript or ECharts it is what people see; with the chart it folds away).
(function () {
  function draw() {
    var el = document.getElementById("rfm-chart");
    var table = document.querySelector("table.rfm-grid");
    if (!el || !table || !window.echarts) return;
    var cells = Array.prototype.map.call(table.querySelectorAll("td[data-r]"), function (td) {
      return {
        value: [Number(td.dataset.f) - 1, Number(td.dataset.r) - 1, Number(td.dataset.count)],
        revenue: td.querySelector(".revenue").textContent.trim(),
        count: td.querySelector(".count").textContent.trim(),
        name: td.dataset.class,
      };
    });
    var bins = table.querySelectorAll("thead th").length - 1;
    var labels = [];
    for (var i = 1; i <= bins; i++) labels.push(String(i));
    var max = cells.reduce(function (m, c) { return Math.max(m, c.value[2]); }, 0);
    el.hidden = false;
    var chart = window.echarts.init(el);
    chart.setOption({
      grid: { left: 64, right: 16, top: 16, bottom: 72 },
      tooltip: {
        formatter: function (p) {
          var c = p.data;
          return c.name + "<br>" + table.dataset.customers + ": " + c.count + "<br>" +
            table.dataset.revenue + ": " + c.revenue;
        },
      },
      xAxis: { type: "category", data: labels, name: table.dataset.xName, nameLocation: "middle", nameGap: 28, splitArea: { show: true } },
      yAxis: { type: "category", data: labels, name: table.dataset.yName, nameLocation: "middle", nameGap: 40, splitArea: { show: true } },
      visualMap: {
        min: 0, max: Math.max(max, 1), calculable: false, orient: "horizontal", left: "center", bottom: 0,
        itemHeight: 120, inRange: { color: ["#f4f6fa", "#8fadeb", "#2b59c3"] },
      },
      series: [{
        type: "heatmap",
        data: cells,
        label: {
          show: true,
          formatter: function (p) { return "{n|" + p.data.count + "}\n{m|" + p.data.revenue + "}"; },
          rich: {
            n: { fontSize: 14, fontWeight: "bold", lineHeight: 20, align: "center" },
            m: { fontSize: 11, lineHeight: 14, align: "center" },
          },
        },
        emphasis: { itemStyle: { borderColor: "#1d2330", borderWidth: 1 } },
      }],
    });
    var box = table.closest("details");
    if (box) box.open = false;
    window.addEventListener("resize", function () { chart.resize(); });
  }
  function busy(event) {
    var button = event.target.querySelector("button[data-busy]");
    if (!button) return;
    button.textContent = button.dataset.busy;
    // After the form is sent, so the click still submits it.
    setTimeout(function () { button.disabled = true; }, 0);
  }
  function start() {
    draw();
    var form = document.querySelector("form[data-refit]");
    if (form) form.addEventListener("submit", busy);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
