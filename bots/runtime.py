"""The bot process's entry point; the gateway client and its cogs live in this package."""
import logging

logger = logging.getLogger(__name__)


def run() -> int:
    """Run the bot until it is told to stop; the exit code for the process."""
    logger.error("the Discord gateway client is not part of this build; web and worker run without it")
    return 2
