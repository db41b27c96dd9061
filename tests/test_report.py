"""berts.util.report: one block list written as markdown and as a self-contained HTML page."""
import base64
import re

from berts.util.report import Report

PNG = base64.b64decode(  # a 1x1 white PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC")


def test_markdown_and_html_from_the_same_blocks(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.png").write_bytes(PNG)
    doc = Report("berts <demo> report", root=tmp_path)
    doc.h2("Results")
    doc.p("accuracy **0.85** with `berts evaluate` & <script>alert(1)</script>")
    doc.table(["model", "accuracy"], [["TF-IDF | char", "0.8443"], ["ours", "0.8100"]], marks=[None, "bad"])
    doc.verdict("pretraining: +0.5 points (goal >= 3)", False)
    doc.image(tmp_path / "plots" / "a.png", "a plot")
    doc.image(tmp_path / "plots" / "missing.png", "never made")  # left out, not a broken link
    doc.code(["berts demo --quick"])
    paths = doc.write(tmp_path)

    md = paths["md"].read_text()
    assert "## Results" in md and "| TF-IDF \\| char | 0.8443 |" in md and "|---|---:|" in md
    assert "> **Not met.** pretraining" in md and "![a plot](plots/a.png)" in md and "missing" not in md
    html = paths["html"].read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html  # text is escaped, never markup
    assert "<strong>0.85</strong>" in html and "<code>berts evaluate</code>" in html
    assert '<tr class="bad">' in html and '<td class="num">0.8100</td>' in html
    src = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert src == ["data:image/png;base64," + base64.b64encode(PNG).decode()]
    assert "<title>berts &lt;demo&gt; report</title>" in html
    assert not re.search(r'(src|href)="(https?:|//)', html)
