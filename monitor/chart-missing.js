/* libjs-chart.js was not installed at build time: no plots, tables only. */
window.Chart = undefined;
