"""dify-openai-bridge: serve any Dify app as an OpenAI chat model.

from bridge import create_app, load_settings
app = create_app(load_settings())
"""

__version__ = "0.1.0"

from bridge.app import create_app
from bridge.settings import ConfigError, ModelConfig, Settings, load_settings

__all__ = ["ConfigError", "ModelConfig", "Settings", "__version__", "create_app", "load_settings"]
