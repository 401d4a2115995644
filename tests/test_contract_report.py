"""The demo batch's contract run: its rendered report shows the settlement, the probability of meeting the
threshold and the net present value by payer, and its results.json carries them."""

from __future__ import annotations

import html
import json
import re

from evaluator.runner import batch
from evaluator.runner.parameters import notebook_path


def test_demo_contract_run_shows_settlement_probability_and_npv_by_payer(tmp_path):
    demo = batch.load_batch(notebook_path("demo_batch.yaml"))
    with_contract = [r.name for r in demo.runs if r.parameters.get("contract_path")]
    assert "sick-leave-contract" in with_contract and "reoffending-contract" in with_contract
    summary = batch.run_batch(demo.select(["sick-leave-contract"]), out=tmp_path, jobs=1, progress=False)
    assert summary.ok, str(summary)
    folder = tmp_path / "sick-leave-contract"
    page = (folder / "report.html").read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
    assert re.search(r"Contract target met\? (yes|no)", text)
    assert "Payment due at the estimate" in text and "Present value at the estimate" in text
    assert re.search(r"Probability the threshold was met \(.*?\) \d+%", text)
    assert re.search(r"payer net present value .*? kommune [\d,]+ stat [\d,]+ region [\d,]+ total [\d,]+", text)
    res = json.loads((folder / "results.json").read_text())
    s = res["settlement"]
    assert s is not None and set(s["npv_by_payer"]) >= {"kommune", "stat", "region"}
    assert abs(sum(v for k, v in s["npv_by_payer"].items() if k != "total") - s["npv"]) < 1e-6 * max(1, abs(s["npv"]))
