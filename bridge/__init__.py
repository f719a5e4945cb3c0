"""dify-openai-bridge: serve any Dify app as an OpenAI chat model.

from bridge import create_app, load_settings
app = create_app(load_settings())
"""

from importlib.metadata import version as _version

__version__ = _version("dify-openai-bridge")

from bridge.launch.app import create_app
from bridge.settings import ConfigError, ModelConfig, Settings, load_settings

__all__ = ["ConfigError", "ModelConfig", "Settings", "__version__", "create_app", "load_settings"]
