"""A report written twice from one list of blocks: markdown (report.md) and one self-contained
HTML page (report.html: the CSS inline, every plot embedded as a base64 PNG, no script, no
network), so it reads offline in any browser and in a terminal.

    doc = Report("berts demo")
    doc.h2("Data"); doc.p("..."); doc.table(["model", "accuracy"], [["TF-IDF", "0.84"]])
    doc.image(Path("plots/pretrain.png"), "pretraining loss")
    doc.write(out_dir)                 # out_dir/report.md, out_dir/report.html

Image paths are written relative to the output directory in the markdown; the HTML carries the
bytes themselves. Inline markup is the small subset both formats share: `code` and **bold**.
"""
from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from berts.util.fileio import atomic_write_file

_INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans CJK SC",sans-serif;max-width:1060px;
margin:2em auto;padding:0 1em;color:#1d2228;line-height:1.5}
h1{font-size:1.7em;border-bottom:2px solid #d0d7de;padding-bottom:.2em}
h2{font-size:1.3em;margin-top:1.8em;border-bottom:1px solid #d0d7de;padding-bottom:.15em}
h3{font-size:1.05em;margin-top:1.3em}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.92em}
th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f5f7} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.good td{background:#eefbf0} tr.bad td{background:#fdf0f0}
code{background:#f3f5f7;padding:.05em .3em;border-radius:3px;font-size:.9em}
pre{background:#f6f8fa;padding:.7em;overflow-x:auto;font-size:.82em;border-radius:4px;white-space:pre-wrap}
figure{margin:1em 0} figure img{max-width:100%;border:1px solid #e1e4e8}
figcaption{font-size:.88em;color:#57606a}
.verdict{padding:.5em .8em;border-left:4px solid #57606a;background:#f6f8fa;margin:.8em 0}
.verdict.good{border-color:#1a7f37} .verdict.bad{border-color:#cf222e}
""".strip()


def _inline_html(text: str) -> str:
    out, last = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[last:m.start()]))
        out.append(f"<code>{html.escape(m.group(1))}</code>" if m.group(1) is not None
                   else f"<strong>{html.escape(m.group(2))}</strong>")
        last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def _is_number(cell: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,.]+( ?[%x]| s| ms)?( \([^)]*\))?", cell.strip()))


@dataclass
class Report:
    title: str
    root: Path | None = None  # image paths are written relative to this directory
    blocks: list[tuple] = field(default_factory=list)

    def h2(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def h3(self, text: str) -> None:
        self.blocks.append(("h3", text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def verdict(self, text: str, good: bool | None) -> None:
        """A sentence that answers a goal, marked met (True), missed (False) or neither (None)."""
        self.blocks.append(("verdict", text, good))

    def bullets(self, items: list[str]) -> None:
        self.blocks.append(("ul", [str(i) for i in items]))

    def table(self, header: list[str], rows: list[list], marks: list[str | None] | None = None) -> None:
        """``marks``: per row None, "good" or "bad" (a shaded row in HTML)."""
        rows = [["" if c is None else str(c) for c in r] for r in rows]
        self.blocks.append(("table", [str(h) for h in header], rows, marks or [None] * len(rows)))

    def code(self, lines: list[str]) -> None:
        self.blocks.append(("pre", [str(x) for x in lines]))

    def image(self, path: Path, caption: str) -> None:
        if Path(path).is_file():  # a plot a run did not make (matplotlib missing) is left out
            self.blocks.append(("img", Path(path), caption))

    # ------------------------------------------------------------------ rendering
    def _rel(self, path: Path) -> str:
        if self.root is None:
            return str(path)
        return Path(os.path.relpath(Path(path).resolve(), Path(self.root).resolve())).as_posix()

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            kind = b[0]
            if kind == "h2":
                out += [f"## {b[1]}", ""]
            elif kind == "h3":
                out += [f"### {b[1]}", ""]
            elif kind == "p":
                out += [b[1], ""]
            elif kind == "verdict":
                mark = {True: "**Met.** ", False: "**Not met.** ", None: ""}[b[2]]
                out += [f"> {mark}{b[1]}", ""]
            elif kind == "ul":
                out += [f"- {item}" for item in b[1]] + [""]
            elif kind == "table":
                header, rows = b[1], b[2]
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + "|".join("---:" if rows and all(_is_number(r[i]) for r in rows if r[i]) and
                                          any(r[i] for r in rows) else "---" for i in range(len(header))) + "|")
                out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
                out.append("")
            elif kind == "pre":
                out += ["```", *b[1], "```", ""]
            elif kind == "img":
                out += [f"![{b[2]}]({self._rel(b[1])})", "", f"*{b[2]}*", ""]
        return "\n".join(out)

    def html(self) -> str:
        body = [f"<h1>{_inline_html(self.title)}</h1>"]
        for b in self.blocks:
            kind = b[0]
            if kind in ("h2", "h3"):
                anchor = re.sub(r"[^a-z0-9]+", "-", b[1].lower()).strip("-")
                body.append(f'<{kind} id="{anchor}">{_inline_html(b[1])}</{kind}>')
            elif kind == "p":
                body.append(f"<p>{_inline_html(b[1])}</p>")
            elif kind == "verdict":
                cls = {True: " good", False: " bad", None: ""}[b[2]]
                mark = {True: "<strong>Met.</strong> ", False: "<strong>Not met.</strong> ", None: ""}[b[2]]
                body.append(f'<div class="verdict{cls}">{mark}{_inline_html(b[1])}</div>')
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b[1]) + "</ul>")
            elif kind == "table":
                header, rows, marks = b[1], b[2], b[3]
                head = "".join(f"<th>{_inline_html(h)}</th>" for h in header)
                trs = []
                for r, m in zip(rows, marks):
                    cells = "".join(f'<td class="num">{_inline_html(c)}</td>' if _is_number(c) else
                                    f"<td>{_inline_html(c)}</td>" for c in r)
                    trs.append(f'<tr class="{m}">{cells}</tr>' if m else f"<tr>{cells}</tr>")
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(trs)}</tbody></table>")
            elif kind == "pre":
                body.append("<pre>" + html.escape("\n".join(b[1])) + "</pre>")
            elif kind == "img":
                data = base64.b64encode(Path(b[1]).read_bytes()).decode("ascii")
                body.append(f'<figure><img alt="{html.escape(b[2])}" src="data:image/png;base64,{data}">'
                            f"<figcaption>{_inline_html(b[2])} (<code>{html.escape(self._rel(b[1]))}</code>)"
                            "</figcaption></figure>")
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{html.escape(self.title)}"
                f"</title><style>{_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")

    def write(self, out_dir) -> dict[str, Path]:

        out = Path(out_dir)
        paths = {"md": out / "report.md", "html": out / "report.html"}
        atomic_write_file(paths["md"], self.markdown() + "\n")
        atomic_write_file(paths["html"], self.html())
        return paths
