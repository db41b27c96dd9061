"""berts: train the BERT family from scratch, with Hugging Face-native directories."""
from berts.config import BertConfig, preset, preset_names
from berts.errors import UserError

__version__ = "0.1.0"

__all__ = ["BertConfig", "preset", "preset_names", "UserError", "__version__"]
