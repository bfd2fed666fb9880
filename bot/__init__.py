"""The Telegram bot service: python-telegram-bot wired to mnist_engine and db."""
