"""Tasks: what the Trainer trains and on what, one file each (base.py holds the Task protocol).

* base.py: ``Task``, ``ModelTask``, ``model_inputs``;
* pretraining.py: the model's objectives on prepared shards;
* electra.py: ELECTRA's generator and discriminator;
* classification.py: sequence classification and regression;
* seq2seq.py: UniLM's prefix LM on source/target pairs.
"""
