// sealbot dashboard: the few live parts. No inline scripts (the CSP forbids them).
"use strict";

function debounce(fn, ms) {
  let timer = null;
  return function () {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

// Confirm dangerous form posts (revoke a key, close a deal).
document.addEventListener("submit", function (event) {
  const form = event.target;
  if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// Bot form: the server renders the preview table as the settings change.
function setupPreview(form) {
  const target = document.getElementById(form.dataset.previewTarget);
  const refresh = debounce(async function () {
    const response = await fetch(form.dataset.preview, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
    });
    target.innerHTML = await response.text();  // our own server-rendered, autoescaped fragment
  }, 300);
  form.addEventListener("input", refresh);
  refresh();
}

// Deal page: candles with a marker per fill.
async function setupChart(el) {
  const status = document.getElementById("chart-status");
  const response = await fetch(el.dataset.src, { credentials: "same-origin" });
  if (!response.ok) {
    status.textContent = "chart unavailable";
    return;
  }
  const data = await response.json();
  const chart = LightweightCharts.createChart(el, {
    height: 360, timeScale: { timeVisible: true, secondsVisible: false },
    // the logo injects a <style> element, which the CSP refuses; deal.html credits TradingView in text instead
    layout: { attributionLogo: false },
  });
  const series = chart.addCandlestickSeries();
  series.setData(data.candles.map(function (c) {
    return { time: c.time, open: Number(c.open), high: Number(c.high), low: Number(c.low), close: Number(c.close) };
  }));
  const colours = { entry: "#2962ff", safety: "#ff9800", exit: "#9c27b0" };
  const bar = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400 }[data.timeframe] || 60;
  const markers = data.markers.map(function (m) {
    return {
      time: m.time - (m.time % bar), position: m.kind === "exit" ? "aboveBar" : "belowBar",
      color: colours[m.kind], shape: m.kind === "exit" ? "arrowDown" : "arrowUp",
      text: m.kind + " " + m.price,
    };
  }).sort(function (a, b) { return a.time - b.time; });
  series.setMarkers(markers);
  chart.timeScale().fitContent();
  el.dataset.candles = String(data.candles.length);
  el.dataset.markers = String(markers.length);
  el.dataset.markerKinds = data.markers.map(function (m) { return m.kind; }).join(",");
  status.textContent = data.candles_error ? "no candles: " + data.candles_error : "";
}

// Portfolio page: the value over time in the user's currency.
async function setupPortfolioChart(el) {
  const status = document.getElementById("chart-status");
  const response = await fetch(el.dataset.src, { credentials: "same-origin" });
  if (!response.ok) {
    status.textContent = "chart unavailable";
    return;
  }
  const data = await response.json();
  const bySecond = new Map();  // the chart needs strictly increasing times; keep the last value of a second
  data.points.forEach(function (p) {
    bySecond.set(Math.floor(Date.parse(p.at) / 1000), Number(p.value));
  });
  const points = Array.from(bySecond, function (e) { return { time: e[0], value: e[1] }; })
    .sort(function (a, b) { return a.time - b.time; });
  const chart = LightweightCharts.createChart(el, {
    height: 360, timeScale: { timeVisible: true, secondsVisible: true },
    layout: { attributionLogo: false },
  });
  chart.addLineSeries({ color: "#2962ff" }).setData(points);
  chart.timeScale().fitContent();
  el.dataset.points = String(points.length);
  status.textContent = points.length ? "" : "no snapshots yet: refresh balances";
}

// Live parts: an element with data-live="N" (and an id) is re-read from the same page
// every N seconds and swapped in; the fetched HTML is parsed, never executed.
function setupLive(el) {
  const id = el.id;
  setInterval(async function () {
    if (document.hidden) return;
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const html = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = html.getElementById(id);
    const current = document.getElementById(id);
    if (fresh && current) current.replaceWith(document.importNode(fresh, true));
  }, Number(el.dataset.live) * 1000);
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-live][id]").forEach(setupLive);
  const portfolioChart = document.getElementById("portfolio-chart");
  if (portfolioChart && window.LightweightCharts) setupPortfolioChart(portfolioChart);
  document.querySelectorAll("form[data-preview][data-preview-target]").forEach(setupPreview);
  const chart = document.getElementById("deal-chart");
  if (chart && window.LightweightCharts) setupChart(chart);
});
