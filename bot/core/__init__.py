"""What the bot says and decides, free of any chat platform.

Nothing here imports `telegram`: the python-telegram-bot layer (bot/telegram_app.py) only
translates updates into calls of these modules and their replies back into Bot API calls, so a
Discord front end can reuse all of it.
"""
