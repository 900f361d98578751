"""The trained sentence classifier: training data (training_data.py), the model and its artifact
(classifier.py), training (train.py), held-out evaluation (evaluate.py) and the ``classifier`` tagger
(tagger.py). The shipped artifact and its model card live in ``models/artifacts/``."""
