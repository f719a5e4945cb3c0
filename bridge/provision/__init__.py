"""`dify-bridge provision`: from a Dify DSL file to a served OpenAI model via Dify's console API.

console.py talks to Dify (`/console/api`), dsl.py reads what the command needs from a DSL file,
config.py edits the bridge's YAML config, plan.py runs the steps, report.py prints the result.
"""

from .console import ConsoleClient, ConsoleError, console_base
from .plan import Credentials, Provisioned, ProvisionError, provision

__all__ = [
    "ConsoleClient",
    "ConsoleError",
    "Credentials",
    "ProvisionError",
    "Provisioned",
    "console_base",
    "provision",
]
