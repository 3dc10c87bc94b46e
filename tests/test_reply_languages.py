"""End to end, in every language: the citizen answers the feedback question in their own
words, in their script and in Latin letters, by SMS through Africa's Talking's inbound
callback, and the complaint is closed (yes) or reopened (no); a message the gateway does not
understand is answered with the words it does, in the citizen's language."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.complaints.registration import NewComplaint
from gateway.config import Config
from gateway.storage.models import Channel, Complaint, OutboundMessage
from gateway.web.keys import COMPLAINTS
from tests.test_lifecycle import OFFICER_L1, sms
from tests.test_reply_words import CODES, WORDS

# language: yes in its script, yes in Latin letters, no in its script, no in Latin letters.
FEEDBACK = {
    "en_IN": ("Yes", "yeah", "No", "nope"),
    "hi": ("हाँ", "haan", "नहीं", "nahi"),
    "hi_Latn": ("haan ji", "theek", "nahi", "nahin"),
    "bn": ("হ্যাঁ", "ha", "না", "na"),
    "as": ("হয়", "hoy", "নহয়", "nohoy"),
    "mr": ("होय", "hoy", "नाही", "nahi"),
    "gu": ("હા", "ha", "ના", "na"),
    "pa": ("ਹਾਂ", "haan", "ਨਹੀਂ", "nahi"),
    "or": ("ହଁ", "han", "ନାହିଁ", "nahin"),
    "te": ("అవును", "avunu", "కాదు", "kaadu"),
    "ta": ("ஆம்", "aam", "இல்லை", "illai"),
    "kn": ("ಹೌದು", "haudu", "ಇಲ್ಲ", "illa"),
    "ml": ("അതെ", "athe", "ഇല്ല", "illa"),
    "ur": ("ہاں", "haan", "نہیں", "nahin"),
    "ne": ("हो", "ho", "होइन", "hoina"),
    "mai": ("हँ", "han", "नहि", "nahi"),
    "sa": ("आम्", "aam", "न", "na"),
    "sd": ("ها", "haa", "نه", "na"),
    "sd_Deva": ("हा", "ha", "न", "nahe"),
    "ks": ("آ", "aah", "نہ", "na"),
    "ks_Deva": ("आ", "aah", "ना", "nah"),
    "brx": ("नंगौ", "nonggou", "नङा", "nonga"),
    "doi": ("हां", "haan", "नेईं", "nein"),
    "kok": ("हय", "hoy", "ना", "na"),
    "mni": ("হোই", "hoi", "নত্তে", "natte"),
    "sat": ("हें", "hen", "बाङ", "bang"),
    "sat_Latn": ("HEN", "hoena", "bang", "bay hoena"),
}


def test_every_language_has_its_feedback_words_here() -> None:
    assert sorted(FEEDBACK) == sorted(CODES)


async def resolved_complaint(client: TestClient[Any, Any], number: str, lang: str) -> Complaint:
    """A complaint of ``number``'s, in ``lang``, that its officer has resolved by SMS."""
    registration = await client.app[COMPLAINTS].register(
        NewComplaint(
            phone=number,
            language=lang,
            department="jal_shakti",
            district="shimla",
            block="theog",
            issue_type="no_water_supply",
            channel=Channel.SMS,
            source_key=f"test:{number}",
        )
    )
    assert await sms(client, OFFICER_L1, f"{registration.ticket} DONE Pipe repaired") == 200
    complaint = await Complaint.get(id=registration.complaint_id)
    assert complaint.status == "resolved"
    return complaint


@pytest.mark.parametrize("lang", CODES)
async def test_the_feedback_answer_in_the_citizen_s_own_words_closes_or_reopens(
    app_client: TestClient[Any, Any], config: Config, lang: str
) -> None:
    client = app_client
    script_yes, latin_yes, script_no, latin_no = FEEDBACK[lang]
    answers = [(script_yes, "closed"), (latin_yes, "closed")]
    answers += [(script_no, "reopened"), (latin_no, "reopened")]
    for i, (word, outcome) in enumerate(answers):
        number = f"+9197{CODES.index(lang):02d}{i:06d}"
        complaint = await resolved_complaint(client, number, lang)
        assert await sms(client, number, word) == 200
        await complaint.refresh_from_db()
        assert complaint.status == outcome, (lang, word)
        last = await OutboundMessage.filter(recipient=number).order_by("-id").first()
        assert last is not None
        assert last.template == (
            "complaint_closed" if outcome == "closed" else "complaint_reopened"
        )


@pytest.mark.parametrize("lang", CODES)
async def test_a_message_not_understood_is_answered_with_the_words_to_send(
    app_client: TestClient[Any, Any], config: Config, lang: str
) -> None:
    number = f"+9196{CODES.index(lang):02d}000001"
    await resolved_complaint(app_client, number, lang)
    assert await sms(app_client, number, "kal subah dekhenge") == 200
    reply = await OutboundMessage.filter(recipient=number).order_by("-id").first()
    assert reply is not None and reply.template == "not_understood"
    language = config.sms_language(lang, latin_only=lang in ("en_IN", "hi_Latn"))
    assert reply.language == language
    words = WORDS.words_to_send(language)
    assert all(word in reply.text for word in words.values()), (words, reply.text)
    # What the reply names works: the complaint is still awaiting an answer.
    assert await sms(app_client, number, words["yes_word"]) == 200
    assert await Complaint.filter(citizen__phone=number, status="closed").exists()
