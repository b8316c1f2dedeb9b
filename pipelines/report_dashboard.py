"""The province dashboard (监督看板): one self-contained HTML page with plotly, readable offline.

Reading order: headline numbers, where the money is (by rule, by agency, by status, recovered),
what needs action (要情 report dates, 逾期 and 挂牌督办, aging), then the nights' trend and the
data quality of the last delivery. plotly.js is embedded once (no CDN: the office network is closed).
"""

from __future__ import annotations

import html
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from . import report_data as rd
from .report_summary import dated

FONT = "Noto Sans CJK SC, Source Han Sans SC, Microsoft YaHei, PingFang SC, SimHei, sans-serif"
AGENCY_CHART_LIMIT = 30
WAN = Decimal(10000)
STATUS_COLORS = {"待下发": "#9D9D9D", "已下发": "#4C78A8", "核查中": "#F58518", "已重开": "#B279A2",
                 "已移送": "#E45756", "已销号": "#54A24B"}
# runs.summary keys (pipelines/runsummary.py) charted night by night, by panel. A key missing
# from a night leaves a gap; unknown top-level numbers go to the first panel so nothing is hidden.
TREND_PANELS = (
    ("疑点（件）", {"suspects": "当晚在办疑点（未销号）", "new": "新增疑点", "updated": "更新疑点",
                  "reopened": "重开疑点", "redetected": "重新检出疑点", "no_longer_detected": "不再检出疑点",
                  "handed_over": "移交疑点",
                  "worklists": "下发台账（份）", "worklists_retired": "撤下旧台账（份）",
                  "warnings": "质量警告（条）"}),
    ("数据入库（行）", {"rows_accepted": "入库行数", "rows_rejected": "拒收行数", "rows_replaced": "替换行数"}),
    ("金额（万元）", {"amount": "当晚在办涉及金额"}),
)


# plotly's Dark24 less its near-black and greys: two dozen lines told apart
TREND_COLORS = ("#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#B68100", "#750D86", "#EB663B",
                "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#B2828D", "#6C7C32", "#778AAE", "#862A16",
                "#A777F1", "#620042", "#1616A7", "#DA60CA", "#0D2A63", "#AF0038")


def fmt_money(value) -> str:
    """Yuan with separators; 万元 from 100,000 up, where 元 digits stop being readable."""
    v = Decimal(value or 0)
    if abs(v) >= 100000:
        return f"{(v / WAN):,.2f} 万元"
    return f"{v:,.2f} 元"


def fmt_yuan(value) -> str:
    """One suspect's money to the fen: its 要情 class is by the exact amount, and 499,999.99 shown
    as 50.00 万元 beside a 500,000.00 of another class read as the same sum."""
    return f"{Decimal(value or 0):,.2f} 元"


def fmt_rate(rate) -> str:
    shown = rd.rate_shown(rate)
    return "—" if shown is None else f"{shown * 100:.1f}%"


def fmt_date(d) -> str:
    if d is None:
        return ""
    return d.isoformat() if isinstance(d, (date, datetime)) else str(d)


def _money_axis(values) -> tuple[float, str]:
    top = max((abs(Decimal(v or 0)) for v in values), default=Decimal(0))
    return (10000.0, "万元") if top >= 100000 else (1.0, "元")


def _in_unit(value, scale: float, unit: str) -> str:
    """An amount in its chart's (or the cards') unit: a hover in each bar's own (68,449.00 元 beside
    12.34 万元 in one chart) read as two scales."""
    return f"{Decimal(value or 0) / Decimal(str(scale)):,.2f} {unit}"


def _base_layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01}, height=height, font={"family": FONT, "size": 13},
        # the template as plotly keeps it, not by name: by name it is looked up and copied for
        # each chart, two thirds of the time a chart's layout took
        margin={"l": 10, "r": 20, "t": 60, "b": 40}, template=pio.templates["plotly_white"],
        legend={"orientation": "h", "y": -0.12},
    )
    return fig


# Amounts on an axis in their digits with separators: plotly's default wrote 300k on an axis of
# 万元 (3,000,000,000 yuan read as 300,000 thousand, or as 300 thousand 万元).
MONEY_TICKS = ",~f"


def _whole_numbers(update, top: int) -> None:
    """Counts of suspects are whole: no 0.5 ticks on a short axis."""
    update(tickformat=",d", rangemode="tozero", **({"dtick": 1} if top <= 10 else {}))


def _empty(fig: go.Figure, text: str = "暂无数据") -> go.Figure:
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 18, "color": "#888"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _label(text) -> str:
    """A name as a chart's label: plotly reads a label as its own HTML (<a href>, <b>), so an agency
    named `<a href="https://…">…</a>` in an extract drew a link in the chart (a security probe); its
    `<`, `>` and `&` are written as entities, which plotly shows as the characters."""
    return html.escape(str(text), quote=False)


AXIS_LABEL_CHARACTERS = 18  # (the longest shipped rule title is 17)
STATUS_CHART_MAX_HEIGHT = 600  # (seven bars; stacked under a 50-rule recovery chart it stood 2,100 px tall)


def _axis_label(text) -> str:
    """A name on a bar chart's axis, cut to AXIS_LABEL_CHARACTERS with …, the whole name in the hover:
    a 60-character agency name or an own rule's long title left the bars 60 px wide, printed."""
    text = str(text)
    return _label(text if len(text) <= AXIS_LABEL_CHARACTERS else text[:AXIS_LABEL_CHARACTERS - 1] + "…")


def _labels_and_names(items: list[dict], label_key: str, code_of) -> tuple[list[str], list[str]]:
    """Each item's label on the axis (cut) and its name in the hover (whole); where two cut labels
    are alike, each with its code (cut too: an own rule's id has no bound) in both."""
    cut = [_axis_label(r[label_key]) for r in items]
    alike = [cut.count(label) > 1 for label in cut]
    labels = [f"{label}（{_axis_label(code_of(r))}）" if dup else label for label, r, dup in zip(cut, items, alike)]
    # codes alike in their first characters too (CERTIFICATION_OVERDUE, CERTIFICATION_OVERDUE_LOCAL): whole
    labels = [f"{cut_label}（{_label(code_of(r))}）" if dup and labels.count(label) > 1 else label
              for label, cut_label, r, dup in zip(labels, cut, items, alike)]
    names = [f"{_label(r[label_key])}（{_label(code_of(r))}）" if dup else _label(r[label_key])
             for r, dup in zip(items, alike)]
    return labels, names


def _count_and_amount(items: list[dict], label_key: str, title: str) -> go.Figure:
    """Two horizontal bar panels sharing the category axis: how many, and how much money."""
    items = list(reversed(items))  # plotly draws the first category at the bottom
    scale, unit = _money_axis(r["amount"] for r in items)
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=("疑点数（件）", f"涉及金额（{unit}）"))
    # a category axis draws two bars of one label as one: two agencies of the same name (each
    # county's 社会保险事业管理局 named alike, or alike in their first characters) are told apart by their codes
    labels, names = _labels_and_names(items, label_key, lambda r: r.get("agency_code") or r.get("rule_id"))
    fig.add_trace(go.Bar(y=labels, x=[r["suspects"] for r in items], orientation="h", name="疑点数",
                         marker_color="#4C78A8", customdata=names,
                         hovertemplate="%{customdata}<br>%{x} 件<extra></extra>"), 1, 1)
    fig.add_trace(go.Bar(y=labels, x=[float(r["amount"]) / scale for r in items], orientation="h", name="涉及金额",
                         marker_color="#E45756", customdata=[[n, _in_unit(r["amount"], scale, unit)] for n, r in zip(names, items)],
                         hovertemplate="%{customdata[0]}<br>%{customdata[1]}<extra></extra>"), 1, 2)
    _base_layout(fig, title, max(320, 28 * len(items) + 140))
    fig.update_layout(showlegend=False)
    _whole_numbers(lambda **kw: fig.update_xaxes(row=1, col=1, **kw), max((r["suspects"] for r in items), default=0))
    fig.update_xaxes(row=1, col=2, tickformat=MONEY_TICKS)
    return _empty(fig) if not items else fig


def fig_status(status_rows: list[dict]) -> go.Figure:
    fig = go.Figure(go.Bar(
        x=[r["status"] for r in status_rows], y=[r["suspects"] for r in status_rows],
        marker_color=[STATUS_COLORS.get(r["status"], "#72B7B2") for r in status_rows],
        customdata=[fmt_money(r["amount"]) for r in status_rows], text=[r["suspects"] for r in status_rows],
        hovertemplate="%{x}<br>%{y} 件<br>%{customdata}<extra></extra>"))
    _base_layout(fig, "疑点状态分布（件）", 360)
    _whole_numbers(fig.update_yaxes, max((r["suspects"] for r in status_rows), default=0))
    return _empty(fig) if not any(r["suspects"] for r in status_rows) else fig


def fig_recovery(rule_rows: list[dict]) -> go.Figure:
    items = list(reversed(rule_rows))
    scale, unit = _money_axis(r["amount"] for r in items)
    labels, names = _labels_and_names(items, "rule_title", lambda r: r["rule_id"])
    fig = go.Figure()
    fig.add_trace(go.Bar(y=labels, x=[float(r["amount"]) / scale for r in items], orientation="h", name="涉及金额",
                         marker_color="#E45756", customdata=[[n, _in_unit(r["amount"], scale, unit)] for n, r in zip(names, items)],
                         hovertemplate="%{customdata[0]}<br>涉及 %{customdata[1]}<extra></extra>"))
    fig.add_trace(go.Bar(y=labels, x=[float(r["recovered"]) / scale for r in items], orientation="h", name="追回金额",
                         marker_color="#54A24B",
                         customdata=[[n, f"{_in_unit(r['recovered'], scale, unit)}（{fmt_rate(r['rate'])}）"] for n, r in zip(names, items)],
                         hovertemplate="%{customdata[0]}<br>追回 %{customdata[1]}<extra></extra>"))
    _base_layout(fig, f"追回金额与涉及金额（按规则，{unit}）", max(320, 40 * len(items) + 140))
    fig.update_layout(barmode="group")
    fig.update_xaxes(tickformat=MONEY_TICKS)
    return _empty(fig) if not items else fig


def fig_aging(aging_rows: list[dict]) -> go.Figure:
    buckets = [label for _, label in rd.AGING_BUCKETS]
    statuses = [s for s in rd.STATUSES if any(r["status"] == s for r in aging_rows)]
    statuses += sorted({r["status"] for r in aging_rows} - set(statuses))
    fig = go.Figure()
    for status in statuses:
        counts = {r["bucket"]: r["suspects"] for r in aging_rows if r["status"] == status}
        fig.add_trace(go.Bar(x=buckets, y=[counts.get(b, 0) for b in buckets], name=status,
                             marker_color=STATUS_COLORS.get(status, "#72B7B2"),
                             hovertemplate=f"{status}<br>%{{x}}：%{{y}} 件<extra></extra>"))
    _base_layout(fig, "未销号疑点账龄（自首次发现起天数，件）", 380)
    fig.update_layout(barmode="stack")
    _whole_numbers(fig.update_yaxes, max((sum(r["suspects"] for r in aging_rows if r["bucket"] == b) for b in buckets), default=0))
    return _empty(fig) if not aging_rows else fig


def fig_trend(history: list[dict]) -> go.Figure:
    """Each night's numbers from runs.summary, in three panels: suspects, rows, money."""
    labels, seen = [], {}
    for r in history:
        base = fmt_date(r["as_of"]) or fmt_date(r["started_at"])[:16] or str(r["run_id"])
        seen[base] = seen.get(base, 0) + 1
        labels.append(base if seen[base] == 1 else f"{base} #{seen[base]}")
    known = {k for _, keys in TREND_PANELS for k in keys}
    ignore = {"files_skipped", "files_failed", "files_ingested", "files_not_extracts"}
    extra = sorted({k for r in history for k in r["metrics"] if "." not in k and k not in known | ignore})
    panels = [(title, dict(keys)) for title, keys in TREND_PANELS]
    panels[0][1].update({k: k for k in extra})
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.09,
                        subplot_titles=[t for t, _ in panels])
    plotted = 0
    for row, (title, keys) in enumerate(panels, start=1):
        scale = 10000 if "万元" in title else 1
        for key, label in keys.items():
            ys = [r["metrics"].get(key) for r in history]
            if not any(v is not None for v in ys):
                continue
            # a colour of its own for every line (plotly's ten repeated: 入库行数 and 当晚在办疑点
            # were one blue), the legend grouped under each panel's title
            fig.add_trace(go.Scatter(x=labels, y=[None if v is None else v / scale for v in ys],
                                     mode="lines+markers", name=label, legendgroup=title, legendgrouptitle_text=title,
                                     line_color=TREND_COLORS[plotted % len(TREND_COLORS)]), row, 1)
            plotted += 1
    fig.update_xaxes(type="category")
    # from zero: an amount moving 1 % drew as a cliff on an axis from 348 to 352
    fig.update_yaxes(tickformat=MONEY_TICKS, rangemode="tozero")  # (rows in the millions read 2M otherwise)
    _base_layout(fig, "每晚运行趋势（各晚运行时的记录）", 640)
    if not history:
        return _empty(fig, "暂无运行记录")
    if not plotted:
        return _empty(fig, "运行记录中没有可绘制的汇总数字")
    return fig


def _arrivals_html(arrived: dict | None) -> str:
    """七、数据报送: a month an agency did not deliver, or a feed that stopped, finds nothing in rows
    that never came (arrivals.py)."""
    if arrived is None:
        return '<p class="note">未检查（late_delivery_days 为 null）。</p>'
    return _late_streams_html(arrived) + _late_feeds_html(arrived)


def _late_streams_html(arrived: dict) -> str:
    late = arrived.get("late") or []
    if not late:
        return (f'<p class="note">{arrived.get("streams", 0)} 个险种·经办机构的待遇发放数据均按其近月报送日报送'
                '（或尚在报送期内）。</p>')

    def stream(t: dict) -> str:
        if t["in_part"]:
            return (f'{t["insurance_name"]}：{t["missing_period"]} 仅部分报送，{t["persons_owed"]}/{t["persons_last"]} 人未见'
                    f'（应于 {t["expected_on"]} 前报送）')
        return f'{t["insurance_name"]}：{t["missing_period"]} 未报送（应于 {t["expected_on"]} 前报送），最近 {t["last_period"]}'

    return ('<p class="note">下列机构未按其近月报送日报送（或仅部分报送）待遇发放数据，其发放对象仍应发放'
            '（该月无任何机构发放、此前未暂停或终止、未死亡），请督促报送：</p>'
            + _table(["经办机构编码", "经办机构", "险种与所属期", "应发未见人数"],
                     [[a["agency_code"], a["agency_name"] or "", "；".join(stream(t) for t in a["streams"]),
                       a["persons_owed"]] for a in late], {3}))


def _late_feeds_html(arrived: dict) -> str:
    feeds = arrived.get("late_feeds") or []
    if not feeds and not arrived.get("feeds"):
        return ('<p class="note">死亡火化、在押服刑、基金账户交易流水、参保缴费与待遇享受人员数据：尚无报送满四次者，'
                '未按报送间隔检查。</p>')
    if not feeds:
        return (f'<p class="note">死亡火化、在押服刑、基金账户交易流水、参保缴费与待遇享受人员数据：{arrived["feeds"]} 项'
                '均在其近六次报送间隔内报送（报送不足四次的不计）。</p>')
    years = "、".join(str(y) for y in arrived.get("calendar_assumed_years") or [])
    assumed = (f'<p class="note">{years} 年无国务院节假日安排（chinesecalendar 或配置 casework.holidays），'
               '工作日按周一至周五（扣除法定节日）计，节假日前后可能误报。</p>') if years else ""
    return ('<p class="note">下列数据停报已超过其近六次报送的最长间隔（另加 late_delivery_days 个工作日；'
            '报送方一行指其最近一次报送新记录之日），依此数据的规则查不出未报送的疑点，请督促报送单位：</p>'
            + _table(["数据", "报送方", "最近报送", "已停报工作日", "近六次最长间隔（工作日）", "应报送截止"],
                     [[f["extract_name"], " ".join(x for x in (f["part"], f["part_name"]) if x) or "全部",
                       f["last_on"], f["silent_days"], f["longest_days"], f["due_by"]] for f in feeds], {3, 4})
            + assumed)


def _table(headers: list[str], body: list[list], numeric: set[int] = frozenset(), row_class=None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    lines = []
    for i, r in enumerate(body):
        cls = f' class="{row_class(i)}"' if row_class and row_class(i) else ""
        cells = "".join(f'<td{_cell_class(j in numeric, v)}>{html.escape("" if v is None else str(v))}</td>'
                        for j, v in enumerate(r))
        lines.append(f"<tr{cls}>{cells}</tr>")
    if not lines:
        lines.append(f'<tr><td colspan="{len(headers)}" class="none">无</td></tr>')
    # (in a box of its own that scrolls across on a narrow screen, rather than the page)
    return f'<div class="tw"><table><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table></div>'


def _cell_class(numeric: bool, value) -> str:
    """An amount, a date, an id or a status kept on one line on screen (2,350,000.00 / 元, 2026-10- /
    21, 已下 / 发 wrapped in a narrow column); longer texts (agency names) wrap."""
    text = "" if value is None else str(value)
    short = numeric or (len(text) <= 16 and text.isascii()) or len(text) <= 4
    return (' class="num nw"' if numeric else ' class="nw"') if short else ""


def _more(total: int, shown: int, where: str) -> str:
    return f'<p class="note">共 {total:,} 件，仅显示前 {shown:,} 件（{where}）。</p>' if total > shown else ""


CSS = """
body{font-family:%s;margin:0 auto;max-width:1320px;padding:16px 24px;color:#222;background:#fafafa}
h1{font-size:24px;margin:8px 0} h2{font-size:19px;margin:28px 0 8px;border-left:4px solid #4C78A8;padding-left:8px}
.meta{color:#666;font-size:13px} .note{color:#666;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:12px 16px}
.card .k{color:#666;font-size:13px} .card .v{font-size:24px;font-weight:600;margin-top:4px}
.card.warn .v{color:#C0392B}
.fig{background:#fff;border:1px solid #e3e3e3;border-radius:6px;margin:10px 0;padding:4px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:12px}
table{border-collapse:collapse;background:#fff;font-size:13px;width:100%%}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left} th{background:#eef2f7}
td.num{text-align:right;font-variant-numeric:tabular-nums} td.none{color:#888;text-align:center}
.tw{overflow-x:auto}
@media screen{td.nw{white-space:nowrap}}
@media screen and (max-width:760px){
body{padding:8px 10px} .cards{grid-template-columns:repeat(2,1fr)} .grid2{grid-template-columns:1fr}
.card .v{font-size:19px}
}
tr.late td{background:#fdecea}
@page{size:A4 landscape;margin:10mm}
@media print{
body{max-width:none;padding:0;background:#fff}
.modebar-container{display:none!important}
.fig,.card,tr,h2{break-inside:avoid}
.tw{overflow:visible}
h2{break-after:avoid}
table{font-size:10px;table-layout:fixed}
th,td{padding:2px 4px;overflow-wrap:anywhere}
}
""" % FONT
# Printed, each chart is drawn again at the page's width (drawn at the screen's, it was cut at the
# page's edge) and the charts, cards and table rows are not split across pages; the toolbar, which
# printed over the charts' titles, is left out.
PRINT_HOOK = """<script>window.addEventListener('beforeprint',function(){
document.querySelectorAll('.js-plotly-plot').forEach(function(p){if(window.Plotly){Plotly.Plots.resize(p);}});});</script>"""

# Records every script error on <html data-js-errors>, so a headless browser's dumped DOM shows it.
ERROR_HOOK = """<script>(function(){var n=0,root=document.documentElement;
function note(msg){n++;root.setAttribute('data-js-errors',String(n));
if(document.body){document.body.setAttribute('data-js-errors',String(n));}
root.setAttribute('data-js-error-messages',((root.getAttribute('data-js-error-messages')||'')+' | '+msg).slice(0,2000));}
window.addEventListener('error',function(e){note(String(e.message||'error'));});
window.addEventListener('unhandledrejection',function(e){note('promise: '+String(e.reason));});})();</script>"""
RENDER_MARK = """<script>window.addEventListener('load',function(){setTimeout(function(){
document.body.setAttribute('data-js-errors',document.documentElement.getAttribute('data-js-errors')||'0');
document.documentElement.setAttribute('data-plots-rendered',String(document.querySelectorAll('.plot-container .main-svg').length?document.querySelectorAll('.plot-container').length:0));},0);});</script>"""


def render(data: dict) -> str:
    """The whole page from report_data's numbers (already masked)."""
    h, as_of = data["headline"], data["as_of"]
    with_suspects = [r for r in data["by_agency"] if r["suspects"]]  # the table lists every agency
    figures = {
        "by-rule": _count_and_amount(data["by_rule"], "rule_title", "按规则：疑点数与涉及金额"),
        "by-agency": _count_and_amount(with_suspects[:AGENCY_CHART_LIMIT], "agency_name",
                                       "按经办机构：疑点数与涉及金额" + ("（涉及金额前30）" if len(with_suspects) > AGENCY_CHART_LIMIT else "")),
        "by-status": fig_status(data["by_status"]),
        "recovery": fig_recovery(data["by_rule"]),
        "aging": fig_aging(data["aging"]),
        "trend": fig_trend(data["history"]),
    }
    # side by side, one as tall as the other (a 360-point chart beside a 580 left a white block)
    figures["by-status"].update_layout(height=min(max(figures["by-status"].layout.height,
                                                      figures["recovery"].layout.height), STATUS_CHART_MAX_HEIGHT))
    div = {k: f'<div class="fig">{f.to_html(full_html=False, include_plotlyjs=False, div_id="fig-" + k, config={"displaylogo": False, "responsive": True})}</div>'
           for k, f in figures.items()}
    # the three money cards in one unit, as a chart's axis (追回金额 0.00 元 stood beside 352.46 万元)
    scale, unit = _money_axis(h[k] for k in ("amount", "open_amount", "recovered"))

    def money(value) -> str:
        return _in_unit(value, scale, unit)

    cards = [
        ("疑点总数", f"{h['suspects']:,} 件", False), ("在办疑点（未销号）", f"{h['open']:,} 件", False),
        ("涉及金额（全部）", money(h["amount"]), False), ("在办涉及金额", money(h["open_amount"]), False),
        ("追回金额", money(h["recovered"]), False),
        ("追回率", fmt_rate(h["rate"]), False), ("逾期", f"{h['overdue']:,} 件", h["overdue"] > 0),
        ("挂牌督办", f"{h['escalated']:,} 件", h["escalated"] > 0),
        ("要情 / 其中重大要情", f"{h['major']:,} / {h['major_serious']:,} 件", h["major_serious"] > 0),
    ]
    cards_html = "".join(f'<div class="card{" warn" if warn else ""}"><div class="k">{html.escape(k)}</div>'
                         f'<div class="v">{html.escape(v)}</div></div>' for k, v, warn in cards)
    n_major, major = data["major"]
    major_tbl = _table(
        ["疑点编号", "规则", "经办机构", "对象", "姓名", "涉及金额", "追回金额", "要情类别", "定级金额", "定级核实日期", "报告期限",
         "状态"],
        [[r["suspect_id"], r["rule_title"], r["agency_name"], r["subject"], r["name"], fmt_yuan(r["amount"]),
          fmt_yuan(r["recovered"]), r["major_class"], fmt_yuan(r["class_amount"]), fmt_date(r["verified_on"]),
          fmt_date(r["report_due"]), r["status"]] for r in major],
        {5, 6, 8}, lambda i: "late" if major[i]["report_late"] else "")
    n_flag, flagged = data["flagged"]
    flag_tbl = _table(
        ["疑点编号", "规则", "经办机构", "对象", "涉及金额", "追回金额", "下发日期", "核查期限", "逾期天数(自然日)", "已发现天数", "挂牌督办", "状态"],
        [[r["suspect_id"], r["rule_title"], r["agency_name"], r["subject"], fmt_yuan(r["amount"]), fmt_yuan(r["recovered"]),
          fmt_date(r["issued_on"]), fmt_date(r["deadline"]), r["days_overdue"], r["days_open"], "是" if r["escalated"] else "否",
          r["status"]] for r in flagged], {4, 5, 8, 9})
    agency_tbl = _table(
        ["经办机构编码", "经办机构", "疑点数", "下发", "已核实", "已销号", "逾期", "已移送", "涉及金额", "追回金额", "追回率"],
        [[r["agency_code"], r["agency_name"], r["suspects"], r["issued"], r["verified"], r["closed"], r["overdue"],
          r["transferred"], fmt_yuan(r["amount"]), fmt_yuan(r["recovered"]), fmt_rate(r["rate"])] for r in data["by_agency"]],
        set(range(2, 11)))
    q = data["quality"]
    if not q["available"]:
        quality_html = '<p class="note">未找到数据质量检查结果（quality_results 表不存在）。</p>'
    else:
        quality_html = (f'<p class="note">最近一批数据：{html.escape(str(q["delivery"] or "—"))}；检查 {q["checks"]} 项，'
                        f'未通过 {len(q["failed"])} 项。</p>'
                        + _table(["数据抽取", "检查项", "字段", "说明"],
                               [[r["extract"], r["expectation"], r["column_name"], r["detail"]] for r in q["failed"]]))
    if q["rejected"]:
        quality_html += ('<p class="note">该批拒收行（按原因）：</p>'
                         + _table(["数据抽取", "原因", "行数"], [[r["extract"], r["reason"], r["n"]] for r in q["rejected"]], {2}))
    late_html = _arrivals_html(data.get("arrivals"))
    generated = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    office = data.get("office")  # config `office`: whose page this is, once printed or forwarded
    office_title = f" · {html.escape(office)}" if office else ""
    office_line = f"编制单位：{html.escape(office)} · " if office else ""
    return f"""<!DOCTYPE html>
<html lang="zh-CN" data-js-errors="0" data-figures="{len(figures)}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>社会保险基金非现场监督看板 {fmt_date(as_of)}{office_title}</title>
<style>{CSS}</style>
{ERROR_HOOK}
<script type="text/javascript">window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>
<script type="text/javascript" id="plotlyjs">{get_plotlyjs()}</script>
</head>
<body data-js-errors="0">
<h1>社会保险基金非现场监督看板</h1>
<p class="meta">{office_line}{html.escape(dated(as_of, data.get("data_as_of")))} · 生成于 {generated} · 省级页面：公民身份号码、银行账号、姓名均已脱敏，完整信息仅见各经办机构核查台账。</p>
<div class="cards">{cards_html}</div>
<p class="note">{html.escape(fmt_date(data.get("data_as_of") or as_of))} 当晚新发现疑点 {h['new_today']:,} 件；累计下发 {h['issued']:,} 件（状态“已下发”的见下图），已核实 {h['verified']:,} 件，已销号 {h['closed']:,} 件，已移送 {h['transferred']:,} 件。</p>
<h2>一、疑点分布</h2>
{div["by-rule"]}
{div["by-agency"]}
<div class="grid2">{div["by-status"]}{div["recovery"]}</div>
<h2>二、要情 / 重大要情（按报告期限）</h2>
{major_tbl}{_more(n_major, len(major), "完整清单在 suspects 表：major_class 不为空的疑点")}
<h2>三、逾期与挂牌督办</h2>
{flag_tbl}{_more(n_flag, len(flagged), "在办的完整清单见各经办机构核查台账；已移送的不再下发，在 suspects 表")}
{div["aging"]}
<h2>四、各经办机构汇总</h2>
{agency_tbl}
<h2>五、运行趋势</h2>
{div["trend"]}
<p class="note">趋势为各晚运行结束时记录的数字，其后报送的核实结果不回溯改动；当前数字见页首。</p>
<h2>六、最近一批数据的质量警告</h2>
{quality_html}
<h2>七、数据报送</h2>
{late_html}
<p class="note">口径：下发 = 已离开待下发状态；已核实 = 已有核实结果或核实日期（已重开的不计，重新核实后再计）；逾期、挂牌督办为当前标记；追回率 = 追回金额 ÷ 涉及金额（追回金额每个疑点以其涉及金额为限，超出部分如利息不计入）；定级金额 = 要情类别所依据的已核实损失（核实时台账所列涉及金额，或此前已降低的金额；此后涉及金额的增减在再次核实前不改变类别）；定级核实日期 = 报告期限起算的核实日期（其后同级或降级的核实不改变报告期限）。</p>
{PRINT_HOOK}
{RENDER_MARK}
</body></html>
"""
