"""Same document: is segment B from A's document? A sentence-level objective in one file, the
worked example of docs/extending/objective.md (the registry finds ``SPEC`` below; nothing else
lists it).

Instances (``berts prepare --objective samedoc``): ``[CLS] A [SEP] B [SEP]``, A a run of whole
sentences (about half the target length), B a run of sentences either from A's document that does
not touch A (at least one sentence between them, before or after A: label 0) or from another
document of the pool (label 1), each with probability 1/2. Unlike NSP, B is never A's
continuation, so adjacency does not give the answer away: the model must tell the topic and
style of a document. A chunk whose document has no sentence apart from A's neighbours makes no
instance (taking only "other" there would skew the classes).

Head: the pooled [CLS] -> 2 classes (structure.SentenceClasses): loss part "samedoc"
(cross-entropy, over the rows), metric ``samedoc_acc``; evaluation sums the cross-entropy and
the correct count over the held-out rows (``samedoc_loss``, ``samedoc_acc``).
"""
from __future__ import annotations

from berts.data.instances import Instance, gather_sentences, target_length, truncate_pair
from berts.objectives.registry import ObjectiveSpec
from berts.objectives.structure import SentenceClasses

SPEC = ObjectiveSpec(
    name="samedoc", kind="sentence", help="is B from A's document (not adjacent to A) or another one?",
    head="berts.objectives.samedoc:SameDocument", attr="same_document", label_key="same_document_label",
    batch_keys=("same_document_label",), maker="berts.objectives.samedoc:make_instances", num_labels=2,
    num_special=3, min_documents=2, eval_labels="same_document_label", eval_logits="structure_logits")


class SameDocument(SentenceClasses):
    name = "samedoc"
    parts = ("samedoc",)
    metric_parts = {"samedoc_acc": "samedoc"}
    label_key = "same_document_label"
    batch_keys = (label_key,)
    num_classes = 2
    hf_names = {"": {"bert": "cls.same_document.", "albert": "same_document."}}


def make_instances(documents, bits, index, rng, out, *, max_seq_length, short_seq_prob, cls_id, sep_id, **_):
    """The instances of document ``index`` appended to ``out`` (see the module docstring)."""
    max_num_tokens = max_seq_length - 3
    doc = documents[index]
    dbits = bits[index] if bits is not None else None
    i = 0
    while i < len(doc):
        target = target_length(rng, max_num_tokens, short_seq_prob)
        end, a, abits, _ = gather_sentences(doc, dbits, i, max(1, target // 2))  # A: sentences i .. end-1
        apart = [s for s in range(len(doc)) if s >= end + 1 or s <= i - 2]  # a sentence between them and A
        if apart:
            label = rng.randrange(2)
            if label == 0:
                start = rng.choice(apart)
                source, sbits, stop = doc, dbits, (len(doc) if start > end else i - 1)
            else:
                other = rng.randrange(len(documents) - 1)
                other += other >= index  # never A's own
                source, sbits = documents[other], bits[other] if bits is not None else None
                start, stop = rng.randrange(len(source)), len(source)
            _, b, bbits, _ = gather_sentences(source[:stop], sbits[:stop] if sbits is not None else None, start,
                                     max(1, target - len(a)))
            a2, b, abits2, bbits = truncate_pair(a, b, abits, bbits, max_num_tokens, rng)
            tokens = [cls_id, *a2, sep_id, *b, sep_id]
            tbits = [3, *abits2, 3, *bbits, 3] if dbits is not None else None
            out.append(Instance(tokens, tbits, len(a2) + 2, label))
        i = end
