"""``park`` (mod_dptools): the channel waits, doing nothing, until it is hung up."""


def run(call, data):
    call.wait(None)
