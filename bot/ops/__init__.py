"""Operating the bot: first contact (setup page, App manifest flow) and `autocode doctor`."""
