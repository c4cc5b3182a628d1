"""``answer`` and ``pre_answer`` (mod_dptools): 200 OK, or 183 with early media.

``answer`` on an answered channel does nothing; on one without media it goes through early
media first (CODEC, CHANNEL_PROGRESS_MEDIA, call state EARLY), then CHANNEL_ANSWER and call
state ACTIVE, laid out like the busy-then-voicemail capture's ``answer``. ``pre_answer`` on a
channel with media does nothing.
"""


def answer(call, data):
    with call.lock:
        if not call.leg.moments["answered"]:
            call.answer("answer_media", "answer")
            call.apply_patch("answer_done")


def pre_answer(call, data):
    with call.lock:
        if not call.leg.media:
            call.progress_media()
