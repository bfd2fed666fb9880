"""The Discord front end (discord.py 2): it translates messages and interactions into calls of
bot.core, and bot.core's replies back into messages, buttons and modals.

- client: builds the bot, its intents, cogs and persistent buttons (the one place);
- pictures: images in direct messages, mentions and reading channels, and /read, /help;
- verdicts: the ✅/❌ buttons, the digit pad and the modal, which keep working after a restart;
- admin_commands: /train, /cancel, /model, /stats, with the product's own permission check;
- progress_message: a training run as one message per admin channel, edited in place;
- turns: pictures of one channel answered in the order they were sent;
- limits: Discord's size limits on messages and embeds.
"""
