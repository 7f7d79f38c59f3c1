// prismrec dashboard: the little JavaScript it needs. Pages are rendered on the server;
// this redraws the timeline (plotly.js from the plotly wheel), re-queries the user view
// when the diversity slider moves, an interest is muted or boosted or the user's events
// arrive, stores a preference (admin sessions, with the CSRF token), and polls the feed.
"use strict";
(function () {
  var POLL_MS = 2000;

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error(url + ": " + r.status); } return r.json(); });
  }
  function getText(url) {
    return fetch(url, {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) { throw new Error(url + ": " + r.status); } return r.text(); });
  }

  // -- the interest timeline --------------------------------------------------------------
  var axis = "index";
  function drawTimeline() {
    var box = document.getElementById("timeline");
    var data = document.getElementById("timeline-data");
    if (!box || !data || !window.Plotly) { return; }
    var chart = JSON.parse(data.textContent);
    var traces = chart.traces.map(function (t) {
      var c = Object.assign({}, t);
      c.x = axis === "time" ? chart.times : chart.index;
      return c;
    });
    var layout = {
      margin: {l: 48, r: 8, t: 8, b: 40}, height: 340, hovermode: "x unified", hoverdistance: -1,
      yaxis: {range: [0, 1], tickformat: ".0%", title: {text: "weight"}},
      xaxis: {title: {text: axis === "time" ? "time (UTC)" : "event of the history (oldest first)"},
              type: axis === "time" ? "date" : "linear"},
      legend: {orientation: "h", x: 0, y: -0.32, yanchor: "top"}, font: {size: 12}
    };
    window.Plotly.react(box, traces, layout, {responsive: true, displaylogo: false});
    document.querySelectorAll("button.axis").forEach(function (b) {
      b.setAttribute("aria-pressed", b.dataset.axis === axis ? "true" : "false");
      b.onclick = function () { axis = b.dataset.axis; drawTimeline(); };
    });
  }

  // -- the user page: diversity slider and live updates -------------------------------------
  function userPage() {
    var view = document.getElementById("user-view");
    if (!view) { return; }
    var user = encodeURIComponent(view.dataset.user);
    var slider = document.getElementById("diversity");
    var shown = document.getElementById("diversity-value");
    var logged = view.dataset.logged;
    var pending = null;
    // mute/boost of this view (interest ids), as the server rendered them
    function steered(kind) {
      var box = document.getElementById("steer-state");
      var text = box ? box.dataset[kind] : "";
      return text ? text.split(",") : [];
    }
    var mute = steered("mute"), boost = steered("boost");
    function refresh() {
      var d = slider ? slider.value : "0";
      var q = "?diversity=" + encodeURIComponent(d) + "&mute=" + encodeURIComponent(mute.join(",")) +
        "&boost=" + encodeURIComponent(boost.join(","));
      return getText("/ui/users/" + user + "/fragment" + q)
        .then(function (html) {
          view.innerHTML = html; drawTimeline();
          mute = steered("mute"); boost = steered("boost");
        });
    }
    function without(list, id) { return list.filter(function (x) { return x !== id; }); }
    view.addEventListener("click", function (ev) {
      var b = ev.target.closest("button.steer, button.remember");
      if (!b) { return; }
      var id = b.dataset.interest;
      if (b.classList.contains("steer")) {
        var on = b.getAttribute("aria-pressed") !== "true";
        mute = without(mute, id); boost = without(boost, id);
        if (on) { (b.dataset.steer === "mute" ? mute : boost).push(id); }
        refresh().catch(function (e) { console.warn(e.message); });
        return;
      }
      var steer = mute.indexOf(id) >= 0 ? "mute" : boost.indexOf(id) >= 0 ? "boost" : "clear";
      var body = "csrf=" + encodeURIComponent(view.dataset.csrf) + "&interest=" +
        encodeURIComponent(id) + "&steer=" + steer;
      fetch("/ui/users/" + user + "/preferences", {method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: body})
        .then(function (r) { if (!r.ok) { throw new Error("store preference: " + r.status); } return refresh(); })
        .catch(function (e) { console.warn(e.message); });
    });
    if (slider) {
      slider.addEventListener("input", function () {
        shown.textContent = Number(slider.value).toFixed(2);
        clearTimeout(pending);
        pending = setTimeout(refresh, 200);
      });
    }
    if (view.dataset.live === "true") {
      setInterval(function () {
        getJSON("/ui/users/" + user + "/version").then(function (v) {
          if (String(v.logged_events) !== String(logged)) {
            logged = String(v.logged_events);
            return refresh();
          }
        }).catch(function (e) { console.warn(e.message); });
      }, POLL_MS);
    }
  }

  // -- the overview: refreshed in place ------------------------------------------------------
  function overviewPage() {
    var box = document.getElementById("overview");
    if (!box || box.dataset.refresh !== "true") { return; }
    setInterval(function () {
      getText("/ui/fragments/overview").then(function (html) { box.innerHTML = html; })
        .catch(function (e) { console.warn(e.message); });
    }, POLL_MS * 2);
  }

  // -- the live feed -------------------------------------------------------------------------
  function cell(row, text, href) {
    var td = document.createElement("td");
    if (href) {
      var a = document.createElement("a");
      a.href = href; a.textContent = text; td.appendChild(a);
    } else { td.textContent = text; }
    row.appendChild(td);
  }
  function livePage() {
    var table = document.getElementById("feed");
    if (!table) { return; }
    var last = Number(table.dataset.last || 0);
    var body = table.querySelector("tbody");
    setInterval(function () {
      getJSON("/ui/feed?after=" + last).then(function (f) {
        f.events.forEach(function (e) {
          var row = document.createElement("tr");
          cell(row, String(e.seq)); cell(row, e.received);
          cell(row, e.user, "/ui/users/" + encodeURIComponent(e.user));
          cell(row, e.event); cell(row, e.title); cell(row, e.time);
          body.insertBefore(row, body.firstChild);
        });
        while (body.rows.length > 200) { body.deleteRow(body.rows.length - 1); }
        last = f.last;
        table.dataset.last = String(last);
      }).catch(function (e) { console.warn(e.message); });
    }, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawTimeline(); userPage(); overviewPage(); livePage();
  });
})();
