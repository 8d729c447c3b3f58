// The report page's script: reads the figures embedded in #report-data and draws the sections
// with Observable Plot (global `Plot`, over the global `d3`). Plain browser JavaScript, inlined
// as it is by reportHtml.ts: no module loader, no network. Text from the runs is only ever set
// with textContent, never parsed as HTML.
/* global Plot */
;(function () {
  "use strict"
  const started = performance.now()
  const data = JSON.parse(document.getElementById("report-data").textContent)
  const app = document.getElementById("app")

  // ---------------------------------------------------------------------------
  // helpers
  // ---------------------------------------------------------------------------

  /** An element with attributes and children (strings become text nodes). */
  function h(tag, attributes, ...children) {
    const element = document.createElement(tag)
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue
      if (name === "onclick" || name === "oninput" || name === "onchange") element.addEventListener(name.slice(2), value)
      else element.setAttribute(name, value === true ? "" : String(value))
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue
      element.append(child instanceof Node ? child : document.createTextNode(String(child)))
    }
    return element
  }

  const integer = new Intl.NumberFormat("en", { maximumFractionDigits: 0 })
  const decimal = new Intl.NumberFormat("en", { maximumFractionDigits: 3 })
  const usd = (x) => "$" + (x >= 100 ? x.toFixed(2) : x >= 1 ? x.toFixed(3) : x.toPrecision(3))
  const percent = (x) => (x * 100).toFixed(1) + "%"
  const ms = (x) => (x === null || x === undefined ? "–" : x >= 10000 ? (x / 1000).toFixed(1) + " s" : integer.format(x) + " ms")
  const seconds = (x) => (x === null ? "–" : x >= 3600 ? (x / 3600).toFixed(1) + " h" : x >= 60 ? (x / 60).toFixed(1) + " min" : x.toFixed(1) + " s")

  const runs = data.runs
  const models = data.models
  const multiRun = runs.length > 1
  const modelLabel = (index) => models[index].label
  const runLabel = (index) => runs[index].label
  /** A model's name in charts: prefixed with its run when several runs are shown. */
  const seriesLabel = (run, model) => (multiRun ? runLabel(run) + " · " : "") + modelLabel(model)

  function section(id, title, ...children) {
    return h("section", { id }, h("h2", {}, title), ...children)
  }

  function note(text) {
    return h("p", { class: "note" }, text)
  }

  /** A left margin that fits the longest of `labels` (about 7 px a character at 12 px). */
  const marginFor = (labels) => Math.min(420, Math.max(60, 12 + 7 * Math.max(0, ...labels.map((label) => String(label).length))))

  /** A chart: a Plot figure in a container the tests look for. */
  function chart(name, options) {
    const figure = Plot.plot(Object.assign({ style: { fontSize: "12px", overflow: "visible" }, marginLeft: 160, width: 900 }, options))
    return h("div", { class: "chart", "data-chart": name }, figure)
  }

  function table(header, rows, attributes) {
    return h(
      "table",
      Object.assign({ class: "figures" }, attributes || {}),
      h("thead", {}, h("tr", {}, header.map((cell) => h("th", {}, cell)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell) => h("td", {}, cell)))))
    )
  }

  // ---------------------------------------------------------------------------
  // sections
  // ---------------------------------------------------------------------------

  function overview() {
    const totals = (run) => {
      const requests = data.requests.filter((r) => r.run === run)
      const sum = (f) => requests.reduce((n, r) => n + f(r), 0)
      return {
        models: new Set(requests.filter((r) => models[r.model].role === "model").map((r) => r.model)).size,
        tokens: sum((r) => r.tokens.total),
        prompt: sum((r) => r.tokens.prompt),
        completion: sum((r) => r.tokens.completion),
        cost: sum((r) => r.cost.usd),
        unknown: sum((r) => r.cost.unknown),
        cached: sum((r) => r.cost.cached)
      }
    }
    const rows = runs.map((run, i) => {
      const t = totals(i)
      return [
        run.label,
        run.timestamp,
        integer.format(run.records),
        String(t.models),
        integer.format(run.ok),
        integer.format(run.errors),
        integer.format(run.judgeRecords),
        seconds(run.wallSeconds) + (run.wallSource === "timestamps" ? " (from timestamps)" : ""),
        integer.format(t.tokens) + (t.tokens > 0 ? " (" + integer.format(t.prompt) + " in, " + integer.format(t.completion) + " out)" : ""),
        usd(t.cost) + (t.unknown > 0 ? " + " + integer.format(t.unknown) + " of unknown price" : "") + (t.cached > 0 ? ", " + integer.format(t.cached) + " cached" : "")
      ]
    })
    const problems = runs.flatMap((run) =>
      run.unreadable > 0
        ? [h("p", { class: "warning" }, run.label + ": " + integer.format(run.unreadable) + " line(s) could not be read, e.g. " + run.problems.join("; "))]
        : []
    )
    return section(
      "overview",
      "Overview",
      table(["run", "started", "records", "models", "succeeded", "errors", "judge requests", "wall time", "tokens", "cost"], rows, { id: "overview-table" }),
      problems,
      h("p", { class: "note" }, "Files: ", runs.map((run) => h("code", {}, run.completed + (run.judge ? " + " + run.judge : ""))))
    )
  }

  /** One chart of means with their 95 % intervals: one bar per series, error bars over them. */
  function meanChart(name, rows, label, isBoolean) {
    const points = rows.filter((row) => row.mean !== null).map((row) => Object.assign({ label: label(row) }, row))
    if (points.length === 0) return null
    const withInterval = points.filter((row) => row.low !== null && row.high !== null)
    const domain = isBoolean ? [0, 1] : undefined
    return chart(name, {
      height: Math.max(80, 28 * points.length + 40),
      marginLeft: marginFor(points.map((p) => p.label)),
      marginRight: 110,
      x: { domain, grid: true, label: isBoolean ? "accuracy (95 % Wilson interval)" : "mean (95 % t interval)", tickFormat: isBoolean ? (x) => percent(x) : undefined },
      y: { label: null, domain: points.map((p) => p.label) },
      color: multiRun ? { legend: true } : undefined,
      marks: [
        Plot.barX(points, { x: "mean", y: "label", fill: multiRun ? (d) => runLabel(d.run) : "#4e79a7", fillOpacity: 0.75, title: (d) => d.label + ": " + (isBoolean ? percent(d.mean) : decimal.format(d.mean)) + " (n = " + d.n + ")" }),
        Plot.ruleY(withInterval, { y: "label", x1: "low", x2: "high", stroke: "#222", strokeWidth: 1.5 }),
        Plot.tickX(withInterval, { y: "label", x: "low", stroke: "#222" }),
        Plot.tickX(withInterval, { y: "label", x: "high", stroke: "#222" }),
        Plot.text(points, { y: "label", x: (d) => (d.high !== null ? d.high : d.mean), text: (d) => (isBoolean ? percent(d.mean) : decimal.format(d.mean)) + "  n = " + integer.format(d.n), dx: 8, textAnchor: "start", fill: "#333" }),
        Plot.ruleX([0])
      ]
    })
  }

  function scores() {
    const names = []
    for (const row of data.scores) if (!names.some((n) => n.scorer === row.scorer)) names.push({ scorer: row.scorer, source: row.source })
    if (names.length === 0) {
      return section("scores", "Scores", note("No scores in these runs: run with --scorer, or with a judge and --judge-parser."))
    }
    const blocks = names.map(({ scorer, source }) => {
      const rows = data.scores.filter((row) => row.scorer === scorer)
      const isBoolean = rows.every((row) => row.boolean)
      const byModel = rows.filter((row) => row.by === "model")
      const byGroup = rows.filter((row) => row.by === "group")
      const all = rows.filter((row) => row.by === "all")
      const summary = all.map((row) =>
        runLabel(row.run) + ": " + (row.mean === null ? "–" : isBoolean ? percent(row.mean) : decimal.format(row.mean)) +
        (row.low !== null ? " [" + (isBoolean ? percent(row.low) : decimal.format(row.low)) + ", " + (isBoolean ? percent(row.high) : decimal.format(row.high)) + "]" : "") +
        " over " + integer.format(row.n) + (row.unscored > 0 ? " (" + integer.format(row.unscored) + " unscored)" : "")
      ).join("; ")
      return h(
        "div",
        { class: "scorer" },
        h("h3", {}, (source === "judge" ? "Judge " : "Scorer ") + scorer),
        h("p", { class: "note" }, "All: " + summary),
        h("h4", {}, "per model"),
        meanChart("score-model:" + scorer, byModel, (row) => seriesLabel(row.run, row.model), isBoolean),
        byGroup.length > 0 ? h("h4", {}, "per group") : null,
        byGroup.length > 0 ? meanChart("score-group:" + scorer, byGroup, (row) => (multiRun ? runLabel(row.run) + " · " : "") + row.group, isBoolean) : null
      )
    })
    const differences = data.differences.filter((d) => d.mean !== null)
    const comparison = runs.length === 2 && differences.length > 0
      ? h(
        "div",
        { class: "scorer" },
        h("h3", {}, "Difference: " + runLabel(1) + " − " + runLabel(0) + ", paired by prompt"),
        chart("difference", {
          height: Math.max(80, 28 * differences.length + 40),
          marginLeft: marginFor(differences.map((d) => d.scorer)),
          marginRight: 110,
          x: { grid: true, label: "mean paired difference (95 % t interval)" },
          y: { label: null },
          marks: [
            Plot.barX(differences, { x: "mean", y: "scorer", fill: (d) => (d.mean >= 0 ? "#59a14f" : "#e15759"), fillOpacity: 0.75 }),
            Plot.ruleY(differences.filter((d) => d.low !== null), { y: "scorer", x1: "low", x2: "high", stroke: "#222", strokeWidth: 1.5 }),
            Plot.text(differences, { y: "scorer", x: (d) => (d.high !== null ? Math.max(d.high, d.mean) : d.mean), text: (d) => decimal.format(d.mean) + "  n = " + integer.format(d.n), dx: 8, textAnchor: "start", fill: "#333" }),
            Plot.ruleX([0])
          ]
        })
      )
      : runs.length === 2
      ? note("No scores of the two runs pair up by prompt, so there is no paired difference.")
      : null
    return section("scores", "Scores", note(data.notes.intervals), blocks, comparison)
  }

  function errors() {
    const byKind = data.errors.byKind
    if (byKind.length === 0) return section("errors", "Errors", note("No errors."))
    const byQueue = data.errors.byQueue.map((e) => Object.assign({ label: (multiRun ? runLabel(e.run) + " · " : "") + e.queue }, e))
    const byModel = data.errors.byModel
    return section(
      "errors",
      "Errors",
      h("h3", {}, "by kind"),
      chart("errors-kind", {
        height: Math.max(80, 30 * new Set(byKind.map((e) => e.kind)).size + 40),
        marginLeft: marginFor(byKind.map((e) => e.kind)),
        x: { grid: true, label: "errors" },
        y: { label: null },
        color: { legend: multiRun },
        marks: [Plot.barX(byKind, { x: "count", y: "kind", fill: (d) => runLabel(d.run), sort: { y: "-x" }, title: (d) => d.kind + ": " + d.count }), Plot.ruleX([0])]
      }),
      h("h3", {}, "by queue (group, else api)"),
      chart("errors-queue", {
        height: Math.max(80, 30 * new Set(byQueue.map((e) => e.label)).size + 40),
        marginLeft: marginFor(byQueue.map((e) => e.label)),
        x: { grid: true, label: "errors" },
        y: { label: null },
        color: { legend: true },
        marks: [Plot.barX(byQueue, { x: "count", y: "label", fill: "kind", title: (d) => d.label + " " + d.kind + ": " + d.count }), Plot.ruleX([0])]
      }),
      h("h3", {}, "by model"),
      table(["model", "kind", "errors"], byModel.map((e) => [seriesLabel(e.run, e.model), e.kind, integer.format(e.count)]))
    )
  }

  function latency() {
    const requests = data.requests.filter((r) => r.latency !== null)
    if (requests.length === 0) return section("latency", "Latency", note("No latencies in these runs (prompto's Python outputs do not record them)."))
    const bins = requests.flatMap((r) => r.latency.histogram.map((bin) => Object.assign({ series: seriesLabel(r.run, r.model) }, bin)))
    const marks = requests.flatMap((r) => [["p50", r.latency.p50], ["p95", r.latency.p95], ["p99", r.latency.p99]].map(([q, x]) => ({ series: seriesLabel(r.run, r.model), q, x })))
    const series = requests.map((r) => seriesLabel(r.run, r.model))
    return section(
      "latency",
      "Latency",
      note(data.notes.latency),
      chart("latency-histogram", {
        height: 90 * series.length + 60,
        marginLeft: 60,
        marginRight: 200,
        x: { type: "log", label: "latency (ms), log scale", grid: true },
        y: { label: "requests", grid: true },
        fy: { label: null, domain: series },
        marks: [
          Plot.rectY(bins, { x1: "x1", x2: "x2", y: "count", fy: "series", fill: "#4e79a7", inset: 0.5 }),
          Plot.ruleX(marks, { x: "x", fy: "series", stroke: (d) => (d.q === "p50" ? "#59a14f" : d.q === "p95" ? "#f28e2b" : "#e15759"), strokeDasharray: "3,2" }),
          Plot.ruleY([0])
        ]
      }),
      h("p", { class: "legend" }, h("span", { class: "key p50" }, "p50"), h("span", { class: "key p95" }, "p95"), h("span", { class: "key p99" }, "p99")),
      table(
        ["model", "requests", "mean", "p50", "p95", "p99", "max"],
        requests.map((r) => [seriesLabel(r.run, r.model) + (models[r.model].role === "judge" ? " (judge)" : ""), integer.format(r.latency.count), ms(r.latency.mean), ms(r.latency.p50), ms(r.latency.p95), ms(r.latency.p99), ms(r.latency.max)]),
        { id: "latency-table" }
      )
    )
  }

  function attempts() {
    const rows = data.requests.flatMap((r) => r.attempts.map((a) => ({ series: seriesLabel(r.run, r.model), attempts: String(a.attempts), count: a.count })))
    if (rows.length === 0) return section("attempts", "Attempts", note("No attempt counts in these runs."))
    const series = [...new Set(rows.map((r) => r.series))]
    return section(
      "attempts",
      "Attempts",
      note("Requests by the number of attempts they took (1 = no retry)."),
      chart("attempts", {
        height: Math.max(80, 30 * series.length + 60),
        marginLeft: marginFor(series),
        x: { grid: true, label: "requests" },
        y: { label: null, domain: series },
        color: { legend: true, type: "ordinal", scheme: "blues", domain: [...new Set(rows.map((r) => r.attempts))].sort((a, b) => a - b) },
        marks: [Plot.barX(rows, { x: "count", y: "series", fill: "attempts", title: (d) => d.series + ": " + d.count + " with " + d.attempts + " attempt(s)" }), Plot.ruleX([0])]
      })
    )
  }

  // ---------------------------------------------------------------------------
  // the table
  // ---------------------------------------------------------------------------

  const pageSize = 50

  function prompts() {
    const t = data.table
    const sample = data.sample
    const groups = sample.groups
    // one column per run and model that answered a shown prompt, in order of first appearance
    const columns = []
    const columnOf = new Map()
    for (const group of groups) {
      for (const row of group.rows) {
        const key = row.run + ":" + row.model
        if (!columnOf.has(key)) {
          columnOf.set(key, columns.length)
          columns.push({ run: row.run, model: row.model, label: seriesLabel(row.run, row.model) })
        }
      }
    }
    const scorerNames = [...new Set(groups.flatMap((g) => g.rows.flatMap((r) => Object.keys(r.scores))))]
    // the text a search looks in, lower-cased once, at the first search (not while the page opens)
    let haystacks = null
    const haystack = (i) => {
      if (haystacks === null) {
        haystacks = groups.map((g) =>
          g.rows.map((r) => [JSON.stringify(r.id), r.prompt, r.response, r.answer, r.error && r.error.message, r.error && r.error.kind, r.group].filter((x) => typeof x === "string").join("\n")).join("\n").toLowerCase()
        )
      }
      return haystacks[i]
    }

    const search = h("input", { id: "search", type: "search", placeholder: "Search prompts, ids, answers, errors…", "aria-label": "search" })
    const modelFilter = h("select", { id: "filter-model", "aria-label": "model" }, h("option", { value: "" }, "any model"), columns.map((c, i) => h("option", { value: String(i) }, c.label)))
    const scoreFilter = h(
      "select",
      { id: "filter-score", "aria-label": "score" },
      h("option", { value: "" }, "any score"),
      scorerNames.flatMap((name) => [h("option", { value: name + "\u0000pass" }, name + ": true / ≥ 0.5"), h("option", { value: name + "\u0000fail" }, name + ": false / < 0.5")])
    )
    const errorFilter = h("select", { id: "filter-error", "aria-label": "errors" }, h("option", { value: "" }, "errors and answers"), h("option", { value: "errors" }, "with an error"), h("option", { value: "ok" }, "without errors"))
    const status = h("p", { id: "table-status", class: "note" })
    const tbody = h("tbody", {})
    const pager = h("div", { class: "pager" })
    let page = 0
    let visible = []

    const passes = (value, want) => {
      const x = typeof value === "boolean" ? (value ? 1 : 0) : value
      if (typeof x !== "number") return false
      return want === "pass" ? x >= 0.5 : x < 0.5
    }

    function matches(group, i, query) {
      if (query !== "" && !haystack(i).includes(query)) return false
      const column = modelFilter.value
      const rows = column === "" ? group.rows : group.rows.filter((r) => String(columnOf.get(r.run + ":" + r.model)) === column)
      if (rows.length === 0) return false
      if (errorFilter.value === "errors" && !rows.some((r) => r.error)) return false
      if (errorFilter.value === "ok" && !rows.some((r) => !r.error)) return false
      if (scoreFilter.value !== "") {
        const [name, want] = scoreFilter.value.split("\u0000")
        if (!rows.some((r) => passes(r.scores[name], want))) return false
      }
      return true
    }

    function cell(rows) {
      if (rows.length === 0) return h("td", { class: "empty" }, "–")
      return h(
        "td",
        {},
        rows.map((r) =>
          h(
            "div",
            { class: "answer" + (r.error ? " failed" : "") },
            r.sample !== undefined ? h("span", { class: "badge sample" }, "sample " + r.sample) : null,
            r.error ? h("div", {}, h("span", { class: "badge error" }, r.error.kind), " ", h("span", { class: "message" }, r.error.message)) : h("div", { class: "text" }, r.response),
            r.answer !== undefined ? h("div", { class: "extracted" }, "answer: ", h("b", {}, r.answer === null ? "(none extracted)" : r.answer)) : null,
            r.tool_calls ? h("div", { class: "tool-calls" }, h("span", { class: "badge" }, "tool calls"), " ", r.tool_calls.map((c) => h("code", {}, c, " "))) : null,
            r.reasoning !== undefined
              ? h("details", { class: "reasoning" }, h("summary", {}, "reasoning" + (r.reasoning_tokens !== undefined ? " (" + r.reasoning_tokens + " tokens)" : "")), h("div", { class: "text" }, r.reasoning))
              : null,
            h(
              "div",
              { class: "badges" },
              Object.entries(r.scores).map(([name, value]) =>
                h("span", { class: "badge score " + (value === true || (typeof value === "number" && value >= 0.5 && value <= 1) ? "good" : value === false || value === 0 ? "bad" : "") }, name + " " + (typeof value === "number" ? decimal.format(value) : String(value)))
              ),
              r.latency_ms !== undefined ? h("span", { class: "badge" }, ms(r.latency_ms)) : null,
              r.attempts !== undefined && r.attempts > 1 ? h("span", { class: "badge" }, r.attempts + " attempts") : null,
              typeof r.cost === "number" ? h("span", { class: "badge" }, usd(r.cost)) : null
            ),
            r.steps
              ? h(
                "details",
                { class: "steps" },
                h("summary", {}, r.steps.length + (r.moreSteps ? " of " + (r.steps.length + r.moreSteps) : "") + " strategy steps"),
                h("ol", {}, r.steps.map((s) => h("li", {}, h("b", {}, s.step), " ", h("span", { class: "badge" }, s.model), s.error ? h("span", { class: "badge error" }, s.error) : null, s.latency_ms !== undefined ? h("span", { class: "badge" }, ms(s.latency_ms)) : null, h("div", { class: "step-prompt" }, s.prompt), h("div", { class: "text" }, s.response))))
              )
              : null
          )
        )
      )
    }

    function draw() {
      tbody.replaceChildren()
      const from = page * pageSize
      for (const i of visible.slice(from, from + pageSize)) {
        const group = groups[i]
        const first = group.rows[0]
        const byColumn = columns.map(() => [])
        for (const row of group.rows) byColumn[columnOf.get(row.run + ":" + row.model)].push(row)
        tbody.append(
          h(
            "tr",
            { class: "prompt-row" + (group.errorsOnly ? " errors-only" : "") },
            h("td", { class: "prompt" }, h("div", { class: "id" }, "id " + JSON.stringify(first.id) + (first.group !== undefined ? " · group " + first.group : "")), h("div", { class: "text" }, first.prompt), group.errorsOnly ? h("div", { class: "note" }, "shown for its error; other answers not sampled") : null),
            byColumn.map(cell)
          )
        )
      }
      const pages = Math.max(1, Math.ceil(visible.length / pageSize))
      pager.replaceChildren(
        h("button", { type: "button", disabled: page === 0, onclick: () => { page--; draw() } }, "← previous"),
        h("span", {}, " page " + (page + 1) + " of " + pages + " "),
        h("button", { type: "button", disabled: page + 1 >= pages, onclick: () => { page++; draw() } }, "next →")
      )
      status.textContent = integer.format(visible.length) + " of " + integer.format(groups.length) + " prompts match."
    }

    function apply() {
      const query = search.value.trim().toLowerCase()
      visible = []
      groups.forEach((group, i) => { if (matches(group, i, query)) visible.push(i) })
      page = 0
      draw()
    }

    search.addEventListener("input", apply)
    for (const select of [modelFilter, scoreFilter, errorFilter]) select.addEventListener("change", apply)

    const sampled = sample.sampledRows < t.totalRecords
    const summary = "Showing " + integer.format(sample.shownRows) + " of " + integer.format(t.totalRecords) + " records: " +
      (sampled ? "a sample of " + integer.format(sample.sampledPrompts) + " prompts (" + integer.format(sample.sampledRows) + " records, --max-rows " + integer.format(t.maxRows) + ")" : "every record") +
      (sample.errorRowsTotal > 0 ? ", and " + integer.format(sample.errorRowsShown) + " of " + integer.format(sample.errorRowsTotal) + " error records" + (sample.errorRowsShown < sample.errorRowsTotal ? " (the first " + integer.format(t.maxErrorRows) + ")" : " (all)") : "") +
      ". Prompts are cut at " + integer.format(t.promptChars) + " characters and answers at " + integer.format(t.responseChars) + "."

    apply()
    return section(
      "prompts",
      "Prompts and answers",
      h("p", { id: "sample-summary" }, summary),
      note(data.notes.sample + " " + data.notes.pairing),
      h("div", { class: "controls" }, search, modelFilter, scoreFilter, errorFilter),
      status,
      h("div", { class: "table-wrap" }, h("table", { id: "prompts-table", class: "prompts" }, h("thead", {}, h("tr", {}, h("th", {}, "prompt"), columns.map((c) => h("th", {}, c.label)))), tbody)),
      pager
    )
  }

  // ---------------------------------------------------------------------------
  // the page
  // ---------------------------------------------------------------------------

  const nav = h("nav", {}, [["overview", "Overview"], ["scores", "Scores"], ["errors", "Errors"], ["latency", "Latency"], ["attempts", "Attempts"], ["prompts", "Prompts"]].map(([id, title]) => h("a", { href: "#" + id }, title)))
  app.replaceChildren(
    h("header", {}, h("h1", {}, "prompto report"), h("p", { class: "note" }, runs.map((r) => r.label).join(" vs ") + " · made " + data.generated.replace("T", " ").slice(0, 19) + " UTC"), nav),
    overview(),
    scores(),
    errors(),
    latency(),
    attempts(),
    prompts()
  )
  document.body.dataset.renderMs = String(Math.round(performance.now() - started))
  document.body.dataset.ready = "true"
})()
