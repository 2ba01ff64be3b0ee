"""distill/records.py: stored prompts by reference, the append-and-resume loop, its manifest, packs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from senti_edge.distill.corpus import Corpus, CorpusText
from senti_edge.distill.records import (Job, finish_from_records, generate_records, is_complete, lit, load_records,
                                        manifest_path, pack, ref, to_segments, unpack)
from senti_edge.errors import SentiEdgeError
from senti_edge.runtime.chat import Segment

CORPUS = Corpus(by_ref={"sc/sst2:1": CorpusText("sc/sst2:1", "A fine\nfilm.", "positive", None),
                        "st/sem16:2": CorpusText("st/sem16:2", "Taxes are theft", None, "taxes")}, items=[])


class Teacher:
    """Counts calls; answers with the job's id, or fails on ids listed in `fail`."""

    def __init__(self, fail=()):
        self.name, self.settings, self.concurrency = "fake", {"t": 0}, 1
        self.stats = SimpleNamespace(prompt_tokens=0, completion_tokens=0)
        self.fail, self.calls = set(fail), []

    def work(self, job: Job) -> dict:
        self.calls.append(job.id)
        if job.id in self.fail:
            raise SentiEdgeError(f"no answer for {job.id}")
        self.stats.prompt_tokens += 10
        self.stats.completion_tokens += 2
        return {"response": f"answer {job.id}", "teacher": self.name}


def jobs(n: int) -> list[Job]:
    return [Job(f"j{i}", {}) for i in range(n)]


def test_render_puts_corpus_text_back_untrusted_on_one_line():
    parts = [lit("Text:"), ref("sc/sst2:1"), lit("\nTarget:"), ref("st/sem16:2", field="target"), ref("sc/sst2:1", chars=3)]
    assert json.loads(json.dumps(parts)) == parts  # what is stored is plain JSON, with no corpus text in it
    assert "fine" not in json.dumps(parts)
    assert to_segments(parts, CORPUS) == [Segment("Text:", True), Segment(" A fine film.", False), Segment("\nTarget:", True),
                                     Segment(" taxes", False), Segment(" A f", False)]


def test_render_names_a_reference_the_corpus_lacks():
    with pytest.raises(SentiEdgeError, match="'sc/sst2:9' is not in the corpus"):
        to_segments([ref("sc/sst2:9")], CORPUS)


def test_generation_appends_resumes_and_completes(tmp_path):
    path, teacher = tmp_path / "kd.jsonl", Teacher()
    m = generate_records(path, jobs(5), teacher.work, teacher=teacher, settings={}, max_items=2)
    assert (m["done"], m["complete"], m["last_run"]["new_records"]) == (2, False, 2) and not is_complete(path)
    m = generate_records(path, jobs(5), teacher.work, teacher=teacher, settings={})
    assert teacher.calls == ["j0", "j1", "j2", "j3", "j4"]  # nothing generated twice
    assert m["complete"] and is_complete(path) and m["total"]["new_records"] == 5 and len(m["history"]) == 2
    assert m["total"]["prompt_tokens"] == 50 and m["teacher"] == "fake"
    assert [r["id"] for r in load_records(path)] == ["j0", "j1", "j2", "j3", "j4"]
    assert json.loads(manifest_path(path).read_text()) == m


def test_a_teacher_that_keeps_failing_stops_and_keeps_the_records(tmp_path):
    path, teacher = tmp_path / "kd.jsonl", Teacher(fail={"j2", "j3"})
    with pytest.raises(SentiEdgeError, match="failed 2 times in a row.*2 records are kept"):
        generate_records(path, jobs(5), teacher.work, teacher=teacher, settings={"max_errors": 2})
    assert [r["id"] for r in load_records(path)] == ["j0", "j1"]
    m = json.loads(manifest_path(path).read_text())
    assert (m["done"], m["complete"], m["last_run"]["errors"]) == (2, False, 2)


def test_an_occasional_failure_is_skipped_and_retried_on_the_next_run(tmp_path):
    path, teacher = tmp_path / "kd.jsonl", Teacher(fail={"j1"})
    m = generate_records(path, jobs(3), teacher.work, teacher=teacher, settings={})
    assert (m["done"], m["complete"]) == (2, False)
    teacher.fail.clear()
    assert generate_records(path, jobs(3), teacher.work, teacher=teacher, settings={})["complete"]
    assert teacher.calls == ["j0", "j1", "j2", "j1"]


def test_empty_or_duplicate_jobs_are_refused(tmp_path):
    teacher = Teacher()
    with pytest.raises(SentiEdgeError, match="job list is empty"):
        generate_records(tmp_path / "x.jsonl", [], teacher.work, teacher=teacher, settings={})
    with pytest.raises(ValueError, match="duplicate"):
        generate_records(tmp_path / "x.jsonl", [Job("a", {}), Job("a", {})], teacher.work, teacher=teacher, settings={})


def test_pack_and_unpack_round_trip_and_finish_without_a_teacher(tmp_path):
    path, teacher = tmp_path / "run" / "kd.jsonl", Teacher()
    path.parent.mkdir()
    generate_records(path, jobs(3), teacher.work, teacher=teacher, settings={})
    assert pack(path, tmp_path / "pack") == 3
    assert manifest_path(tmp_path / "pack" / "kd.jsonl").is_file()
    fresh = tmp_path / "fresh" / "kd.jsonl"
    fresh.parent.mkdir()
    assert unpack(tmp_path / "pack" / "kd.jsonl.gz", fresh, {"j0", "j2"}) == 2  # only the jobs asked for
    assert unpack(tmp_path / "pack" / "kd.jsonl.gz", fresh, {"j0", "j1", "j2"}) == 1  # and only those missing
    recs = load_records(fresh)
    m = finish_from_records(fresh, jobs(3), {}, recs)
    assert m["complete"] and m["teacher"] == "fake" and m["teacher_settings"] == {"from": "packed records"}


def test_a_damaged_pack_and_missing_records_are_one_line_errors(tmp_path):
    (tmp_path / "kd.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(SentiEdgeError, match="not a readable gzip JSONL pack"):
        unpack(tmp_path / "kd.jsonl.gz", tmp_path / "kd.jsonl", {"j0"})
    with pytest.raises(SentiEdgeError, match="run the generate stage first"):
        load_records(tmp_path / "none.jsonl")
