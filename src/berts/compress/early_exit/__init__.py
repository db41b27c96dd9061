"""Early exit: FastBERT (entropy rule) and PABEE (patience rule) students after each layer of a
fine-tuned classifier. exits.py: the model, self-distillation (its Task), the speed sweep; flags.py:
the command-line flags, torch-free. The run (`berts finetune --early-exit`) is berts.runs.early_exit."""
