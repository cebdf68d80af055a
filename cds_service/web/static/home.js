// The home page's small enhancements: copy buttons, the rule filter, and Try it sending a
// scenario to the service from the browser. Without JavaScript the page still works: every
// rule is listed and Try it submits a form that the server evaluates.
// Untrusted text is only ever set with textContent; the one innerHTML below is the server's
// own rendering of the cards (web/markdown.py, web/templates/home/_cards.html).
(function () {
  "use strict";

  function byId(id) { return document.getElementById(id); }

  // --- Copy buttons ------------------------------------------------------------------------
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    if (!navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = byId(button.getAttribute("data-copy"));
      navigator.clipboard.writeText(source.textContent).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 2000);
      }, function () {
        button.textContent = "Copy failed: select the text";
      });
    });
  });

  // --- Rules: filter by id or word ---------------------------------------------------------
  var search = byId("rule-search");
  if (search) {
    var rules = Array.prototype.slice.call(document.querySelectorAll("#rule-list > li"));
    var count = byId("rule-count");
    var none = byId("no-rule");
    search.closest(".search").hidden = false;
    var filter = function () {
      var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      rules.forEach(function (rule) {
        var text = rule.getAttribute("data-search");
        var match = words.every(function (w) { return text.indexOf(w) !== -1; });
        rule.hidden = !match;
        if (match) { shown += 1; }
      });
      count.textContent = words.length
        ? shown + " of " + rules.length + " rules match"
        : rules.length + " rules";
      none.hidden = shown !== 0;
    };
    search.addEventListener("input", filter);
    filter();
  }

  // --- Try it --------------------------------------------------------------------------------
  var form = byId("try-form");
  if (!form) { return; }
  var select = byId("scenario");
  var status = byId("try-status");
  var cards = byId("cards");
  var requestPre = byId("request-json");
  var responsePre = byId("response-json");
  var button = byId("run-scenario");

  function option() { return select.options[select.selectedIndex]; }

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  function describe() {
    var o = option();
    byId("scenario-shows").textContent = o.getAttribute("data-shows");
    byId("scenario-service").textContent = o.getAttribute("data-service");
    byId("scenario-time").textContent = o.getAttribute("data-evaluation-time");
    byId("scenario-rules").textContent = o.getAttribute("data-rules") || "none";
    var curl = byId("curl-command");
    if (curl && o.getAttribute("data-curl")) { curl.textContent = o.getAttribute("data-curl"); }
  }

  function loadRequest() {
    var o = option();
    return fetch(o.getAttribute("data-request-url"), { headers: { Accept: "application/json" } })
      .then(function (answer) {
        if (!answer.ok) { throw new Error("the scenario could not be read (" + answer.status + ")"); }
        return answer.text();
      })
      .then(function (text) {
        requestPre.textContent = text;
        return text;
      });
  }

  function outcomeText(body) {
    try {
      var issue = body.issue[0];
      return issue.diagnostics || issue.details.text || issue.code;
    } catch (e) {
      return "no details";
    }
  }

  function render(response) {
    return fetch(form.getAttribute("data-render-url"), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/html" },
      body: JSON.stringify(response)
    }).then(function (answer) {
      if (!answer.ok) { throw new Error("the cards could not be rendered (" + answer.status + ")"); }
      return answer.text();
    });
  }

  function run() {
    var o = option();
    var service = o.getAttribute("data-service");
    button.disabled = true;
    say("Sending " + o.textContent + " to " + service + "…");
    return loadRequest()
      .then(function (text) {
        return fetch(form.getAttribute("data-service-base") + encodeURIComponent(service), {
          method: "POST",
          headers: {
            "Content-Type": "application/json",
            Accept: "application/json",
            "CDS-Evaluation-Time": o.getAttribute("data-evaluation-time")
          },
          body: text
        });
      })
      .then(function (answer) {
        return answer.json().then(function (body) { return { ok: answer.ok, status: answer.status, body: body }; });
      })
      .then(function (result) {
        responsePre.textContent = JSON.stringify(result.body, null, 2);
        byId("response-details").open = true;
        if (!result.ok) {
          cards.textContent = "";
          say("The service answered " + result.status + ": " + outcomeText(result.body), true);
          return null;
        }
        return render(result.body).then(function (html) {
          cards.innerHTML = html;
          var n = (result.body.cards || []).length;
          say("Response received: " + n + " card" + (n === 1 ? "" : "s") + ".");
        });
      })
      .catch(function (error) {
        say("Try it failed: " + error.message, true);
      })
      .then(function () { button.disabled = false; });
  }

  select.addEventListener("change", function () {
    describe();
    loadRequest().catch(function (error) { say(error.message, true); });
  });
  describe();
  if (!requestPre.textContent.trim()) {
    loadRequest().catch(function (error) { say(error.message, true); });
  }

  // Development: the browser calls the service itself, as an EHR would. Production: the form
  // is submitted and the server evaluates the scenario at its date (see web/home.py).
  if (form.getAttribute("data-mode") === "service") {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      run();
    });
  }
})();
