"""The Telegram front end (python-telegram-bot v22): it translates updates into calls of bot.core
and bot.core's replies back into Bot API calls.

- application: builds the Application, its handlers and its admin channel (the one place);
- user_handlers, admin_handlers: the handlers;
- progress_message: a training run as one message per admin chat, edited in place;
- update_processor: updates concurrent across chats, in order within a chat.
"""
