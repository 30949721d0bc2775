"""GitHub: App authentication, the calls the bot makes, and what it writes there."""
