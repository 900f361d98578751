"""The trained sentence classifier: features, training, evaluation, the shipped artifact and its card.

Not built yet (the classifier issue). It will plug into the pipeline as one more tagger
(``extractors.taggers.base.Tagger``, method ``classifier``), so ingest, tag and the warehouse need
no change beyond registering it.
"""
