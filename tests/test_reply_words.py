"""Replies in every language: each language's yes, no, status and help words, in its script
and in Latin letters, its digits, a word two languages read differently, the replies files
themselves, and the SMS that name the words (end to end: tests/test_reply_languages.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.sms.templates import TemplateBook
from gateway.text.replies import Intent, Understood
from gateway.text.reply_words import FILE, ReplyWordsError, Vocabulary
from tests.conftest import SHIPPED_CONFIG

CONFIG = load_config(SHIPPED_CONFIG, environ={})
CODES = [lang.code for lang in CONFIG.languages]
LATIN = {lang.code: lang.latin for lang in CONFIG.languages}
LOCALES = CONFIG.path(CONFIG.paths.locales)
WORDS = Vocabulary.load(LOCALES, CODES)
T = "436805396"


# language: (yes words, no words, status keyword, help keyword), each as a citizen types it.
TABLE: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {
    "en_IN": (["yes", "Yes!", "yeah"], ["no", "No.", "not solved"], ["STATUS"], ["help"]),
    "hi": (["हाँ", "हां", "haan", "Haan ji", "ho gaya"], ["नहीं", "nahi", "नहीं हुआ"],
           ["स्थिति", "sthiti"], ["मदद", "madad"]),
    "hi_Latn": (["haan", "hanji", "theek"], ["nahi", "nahin"], ["sthiti"], ["madad", "sahayata"]),
    "bn": (["হ্যাঁ", "হ্যা", "ha", "hyan", "হয়েছে", "ঠিক আছে"], ["না", "na", "হয়নি", "hoy ni"],
           ["অবস্থা", "obostha"], ["সাহায্য", "sahajjo"]),
    "as": (["হয়", "hoy", "হৈছে"], ["নহয়", "nohoy", "নাই"], ["অৱস্থা", "obostha"],
           ["সহায়", "xohai"]),
    "mr": (["होय", "हो", "hoy", "ho", "झाले"], ["नाही", "nahi", "नाही झाले", "nahi zala"],
           ["स्थिती", "sthiti"], ["मदत", "madat"]),
    "gu": (["હા", "ha", "haa", "થઈ ગયું"], ["ના", "નહીં", "na", "nathi"], ["સ્થિતિ", "sthiti"],
           ["મદદ", "madad"]),
    "pa": (["ਹਾਂ", "haan", "ਹਾਂ ਜੀ", "ho gaya"], ["ਨਹੀਂ", "nahi", "ਨਾ"], ["ਸਥਿਤੀ", "sthiti"],
           ["ਮਦਦ", "madad"]),
    "or": (["ହଁ", "han", "ହେଲା"], ["ନାହିଁ", "nahin", "ନା", "ହେଲା ନାହିଁ"],
           ["ସ୍ଥିତି", "sthiti"], ["ସାହାଯ୍ୟ", "sahajya"]),
    "te": (["అవును", "avunu", "ఔను", "అయింది"], ["కాదు", "లేదు", "kaadu", "ledu"],
           ["స్థితి", "sthiti"], ["సహాయం", "sahayam"]),
    "ta": (["ஆம்", "aam", "aama", "ஆமாம்"], ["இல்லை", "illai", "illa", "இல்ல"],
           ["நிலை", "nilai"], ["உதவி", "udhavi"]),
    "kn": (["ಹೌದು", "haudu", "howdu", "ಆಯಿತು"], ["ಇಲ್ಲ", "illa", "ಆಗಿಲ್ಲ"], ["ಸ್ಥಿತಿ", "sthiti"],
           ["ಸಹಾಯ", "sahaya"]),
    "ml": (["അതെ", "athe", "ഉവ്വ്"], ["ഇല്ല", "illa", "അല്ല", "alla"],
           ["സ്ഥിതി", "sthithi"], ["സഹായം", "sahayam"]),
    "ur": (["ہاں", "haan", "ہان", "جی ہاں"], ["نہیں", "nahin", "نهیں"], ["حالت", "halat"],
           ["مدد", "madad"]),
    "ne": (["हो", "ho", "भयो", "bhayo", "हजुर हो"], ["होइन", "hoina", "छैन", "chhaina", "भएन"],
           ["स्थिति", "sthiti"], ["सहायता", "maddat"]),
    "mai": (["हँ", "han", "भ गेल", "हल भ गेल"], ["नहि", "nahi", "नै", "नहि भेल", "nahi bhel"],
            ["स्थिति", "sthiti"], ["मदति", "sahayata"]),
    "sa": (["आम्", "aam", "समाहितम्"], ["न", "na", "नहि", "न समाहितम्"], ["स्थितिः", "sthiti"],
           ["साहाय्यम्", "sahayata"]),
    "sd": (["ها", "haa", "جي ها", "حل ٿي ويو", "thi wayo"], ["نه", "na", "ناهي", "حل نه ٿيو"],
           ["حالت", "halat"], ["مدد", "madad"]),
    "sd_Deva": (["हा", "haa", "जी हा", "हल थी वियो", "thi viyo"], ["न", "nahe", "नाहे", "हल न थियो"],
                ["हालत", "halat"], ["मदद", "madad"]),
    "ks": (["آ", "aah", "آہن", "aahan", "ہاں", "حل سپُد", "hal sapud"],
           ["نہ", "na", "نا", "حل نہ سپُد", "hal na sapud"], ["حالت", "halat"], ["مدد", "madad"]),
    "ks_Deva": (["आ", "aah", "आहन", "हाँ", "हल सपुद", "hal sapud"], ["ना", "na", "न", "हल न सपुद"],
                ["हालत", "halat"], ["मदद", "madad"]),
    "brx": (["नंगौ", "nonggou", "जाबाय", "समाधान जाबाय"], ["नङा", "nonga", "जायाखै", "jayakhai"],
            ["स्थिति", "sthiti"], ["हेफाजाब", "hefajab"]),
    "doi": (["हां", "haan", "आं", "हल होई गेआ"], ["नेईं", "nein", "नेईं होआ", "hal nei hoa"],
            ["स्थिति", "halat"], ["मदद", "madad"]),
    "kok": (["हय", "hoy", "हंय", "सुटलें"], ["ना", "na", "सुटूंक ना", "sutunk na"],
            ["स्थिती", "sthiti"], ["मजत", "mazat"]),
    "mni": (["হোই", "hoi", "লোইরে", "অৱাবা লোইরে"], ["নত্তে", "natte", "লোইদ্রি", "loidri"],
            ["ফিভম", "phibham"], ["মতেং", "mateng"]),
    "sat": (["हें", "hen", "हँ", "समाधान होयेना"], ["बाङ", "bang", "ओंहों", "बाय होयेना", "bay hoena"],
            ["हालत", "halot"], ["गोड़ो", "goro"]),
    "sat_Latn": (["hen", "haan", "samadhan hoena"], ["bang", "onhon", "bay hoena"], ["halot"],
                 ["goro"]),
}  # fmt: skip
# "All right": a yes as the whole message; beside a ticket, only an acknowledgement.
OK = {"en_IN": "okay", "te": "సరే", "ta": "சரி", "ml": "ശരി", "or": "ହଉ", "kn": "ಸರಿ", "ne": "हुन्छ"}
OK.update(sd="چڱو", sd_Deva="ठीक आहे", ks="ٹھیک چھُ", ks_Deva="ठीक छु")

# Each language's digits 0 to 9, as its citizens' keypads type them.
DIGITS = {
    "en_IN": "0123456789",
    "hi_Latn": "0123456789",
    "hi": "०१२३४५६७८९",
    "mr": "०१२३४५६७८९",
    "bn": "০১২৩৪৫৬৭৮৯",
    "as": "০১২৩৪৫৬৭৮৯",
    "pa": "੦੧੨੩੪੫੬੭੮੯",
    "gu": "૦૧૨૩૪૫૬૭૮૯",
    "or": "୦୧୨୩୪୫୬୭୮୯",
    "ta": "௦௧௨௩௪௫௬௭௮௯",
    "te": "౦౧౨౩౪౫౬౭౮౯",
    "kn": "೦೧೨೩೪೫೬೭೮೯",
    "ml": "൦൧൨൩൪൫൬൭൮൯",
    "ur": "۰۱۲۳۴۵۶۷۸۹",  # Extended Arabic-Indic, as Urdu keyboards type them
    "ne": "०१२३४५६७८९",
    "mai": "०१२३४५६७८९",
    "sa": "०१२३४५६७८९",
    "sd": "٠١٢٣٤٥٦٧٨٩",  # Arabic-Indic, as CLDR's Sindhi numbers them
    "sd_Deva": "०१२३४५६७८९",
    "ks": "۰۱۲۳۴۵۶۷۸۹",  # Extended Arabic-Indic, as Urdu keyboards type them
    "ks_Deva": "०१२३४५६७८९",
    "brx": "०१२३४५६७८९",
    "doi": "०१२३४५६७८९",
    "kok": "०१२३४५६७८९",
    "mni": "০১২৩৪৫৬৭৮৯",  # Bengali digits, as Manipuri in Bengali script types them
    "sat": "०१२३४५६७८९",
    "sat_Latn": "0123456789",
}


def native(digits: str, lang: str) -> str:
    return digits.translate(str.maketrans("0123456789", DIGITS[lang]))


def test_every_configured_language_has_its_words_and_digits_here() -> None:
    assert sorted(TABLE) == sorted(CODES) == sorted(DIGITS)
    assert all((LOCALES / code / FILE).exists() for code in CODES)


@pytest.mark.parametrize("lang", CODES)
def test_each_language_s_words_in_its_script_and_in_latin_letters(lang: str) -> None:
    yes, no, status, help_ = TABLE[lang]
    for word in yes:
        assert WORDS.understand(word, language=lang) == Understood(Intent.SOLVED), word
        assert WORDS.understand(f"{word} {T}", language=lang) == Understood(Intent.SOLVED, T)
    for word in no:
        assert WORDS.understand(word, language=lang) == Understood(Intent.NOT_SOLVED), word
        got = WORDS.understand(f"{T} {word}", language=lang)
        assert got == Understood(Intent.NOT_SOLVED, T), word
    for word in status:
        assert WORDS.understand(f"{word} {T}", language=lang) == Understood(Intent.STATUS, T)
    for word in help_:
        assert WORDS.understand(word, language=lang) == Understood(Intent.HELP), word
    if lang in OK:
        assert WORDS.understand(OK[lang], language=lang) == Understood(Intent.SOLVED)
        assert WORDS.understand(f"{OK[lang]} {T}", language=lang) == Understood(Intent.STATUS, T)
    # Both at once is no answer.
    assert WORDS.understand(f"{yes[0]} {no[0]}", language=lang).intent is Intent.UNKNOWN


@pytest.mark.parametrize("lang", CODES)
def test_each_language_s_digits(lang: str) -> None:
    def read(text: str) -> Understood:
        return WORDS.understand(native(text, lang), language=lang)

    assert read("1") == Understood(Intent.SOLVED)
    assert read("2") == Understood(Intent.NOT_SOLVED)
    assert read(f"1 {T}") == Understood(Intent.SOLVED, T)
    assert read(f"{T} 2") == Understood(Intent.NOT_SOLVED, T)
    assert read(T) == Understood(Intent.STATUS, T)
    assert read("436 805 396") == Understood(Intent.STATUS, T)
    status_word = TABLE[lang][2][0]
    assert WORDS.understand(f"{status_word} {native(T, lang)}", language=lang) == Understood(
        Intent.STATUS, T
    )


def test_arabic_indic_digits_too_for_urdu() -> None:
    assert WORDS.understand("٢ ٤٣٦٨٠٥٣٩٦", language="ur") == Understood(Intent.NOT_SOLVED, T)


def test_words_are_read_however_the_keyboard_joined_or_stretched_them() -> None:
    # A zero-width joiner inside a conjunct, letters held down, Latin capitals.
    assert WORDS.understand("হ\u200d্যাঁ", language="bn").intent is Intent.SOLVED
    assert WORDS.understand("illaiii", language="ta").intent is Intent.NOT_SOLVED
    assert WORDS.understand("AVUNUUU", language="te").intent is Intent.SOLVED
    assert WORDS.understand("aam, nandri", language="ta").intent is Intent.SOLVED


def test_the_citizen_s_language_decides_a_word_it_reads_its_own_way() -> None:
    # "हा"/"ha" is Hindi's and Gujarati's yes, and Marathi's "this": not an answer there.
    assert WORDS.understand("ha", language="hi").intent is Intent.SOLVED
    assert WORDS.understand("હા", language="gu").intent is Intent.SOLVED
    assert WORDS.understand("ha", language="mr").intent is Intent.UNKNOWN
    assert WORDS.understand("हा", language="mr").intent is Intent.UNKNOWN
    # A Marathi speaker's own yes, and Hindi's "haan", which Marathi does not take back.
    assert WORDS.understand("हो", language="mr").intent is Intent.SOLVED
    assert WORDS.understand("haan", language="mr").intent is Intent.SOLVED
    # Another language's word counts where every language listing it agrees.
    assert WORDS.understand("ha", language="ta").intent is Intent.SOLVED
    assert WORDS.understand("illai", language="hi").intent is Intent.NOT_SOLVED


def write(root: Path, lang: str, text: str) -> None:
    (root / lang).mkdir(parents=True, exist_ok=True)
    (root / lang / FILE).write_text(text, encoding="utf-8")


def test_a_word_two_languages_read_oppositely_is_read_by_the_citizen_s_language_only(
    tmp_path: Path,
) -> None:
    write(tmp_path, "xx", "yes: [foo, bar]\nno: [baz]\nstatus: [st]\nhelp: [hp]\n")
    write(tmp_path, "yy", "yes: [qux]\nno: [foo]\nstatus: [st]\nhelp: [hp]\n")
    write(tmp_path, "zz", "yes: [bar]\nno: [baz]\nstatus: [st]\nhelp: [hp]\n")
    words = Vocabulary.load(tmp_path, ["xx", "yy", "zz"])
    assert words.understand("foo", language="xx").intent is Intent.SOLVED
    assert words.understand("foo", language="yy").intent is Intent.NOT_SOLVED
    assert words.understand("foo", language="zz").intent is Intent.UNKNOWN
    assert words.understand("foo").intent is Intent.UNKNOWN
    assert words.understand("qux", language="zz").intent is Intent.SOLVED


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("yes: [a]\nno: [b]\nstatus: [c]\nhelp: [d]\nmaybe: [e]\n", "unknown key(s) maybe"),
        ("no: [b]\nstatus: [c]\nhelp: [d]\n", "yes needs at least one word"),
        ("yes: [a]\nno: [a]\nstatus: [c]\nhelp: [d]\n", "'a' is listed under two keys"),
        ("yes: [a]\nno: [b]\nstatus: [c d]\nhelp: [d]\n", "status: 'c d' has too many words"),
        ("yes: [a b c d]\nno: [b]\nstatus: [c]\nhelp: [d]\n", "too many words"),
        ("yes: a\nno: [b]\nstatus: [c]\nhelp: [d]\n", "yes must be a list of words"),
        ("yes: ['!!']\nno: [b]\nstatus: [c]\nhelp: [d]\n", "'!!' is not a word"),
        ("[yes, no]\n", "expected a mapping"),
        ("yes: [a\n", "cannot be read"),
    ],
)
def test_a_malformed_replies_file_is_refused_naming_it(
    tmp_path: Path, text: str, error: str
) -> None:
    write(tmp_path, "xx", text)
    with pytest.raises(ReplyWordsError) as e:
        Vocabulary.load(tmp_path, ["xx"])
    assert str(e.value).startswith(f"xx/{FILE}: ") and error in str(e.value)


def test_yes_and_no_are_words_not_yaml_booleans(tmp_path: Path) -> None:
    write(tmp_path, "xx", "yes: [YES, on]\nno: [NO, off]\nstatus: [st]\nhelp: [hp]\n")
    words = Vocabulary.load(tmp_path, ["xx"])
    assert words.words_to_send("xx")["yes_word"] == "YES"
    assert words.understand("off", language="xx").intent is Intent.NOT_SOLVED


@pytest.mark.parametrize("lang", CODES)
def test_the_sms_that_say_what_to_send_name_the_language_s_own_words(lang: str) -> None:
    """The "not understood" and help SMS name words that are read as they say."""
    book = TemplateBook.load(CONFIG.path(CONFIG.paths.sms_templates), languages=CODES)
    words = WORDS.words_to_send(lang)
    expected = {
        "yes_word": Understood(Intent.SOLVED),
        "no_word": Understood(Intent.NOT_SOLVED),
        "help_word": Understood(Intent.HELP),
    }
    for key, meaning in expected.items():
        assert WORDS.understand(words[key], language=lang) == meaning, words[key]
    status = WORDS.understand(f"{words['status_word']} {T}", language=lang)
    assert status == Understood(Intent.STATUS, T)
    for name in ("not_understood", "help_reply"):
        template = book[name]
        values = {"service_code": CONFIG.service.service_code, **words}
        sms = template.render(lang, values, fallback=CONFIG.service.default_language)
        assert sms.language == lang and sms.segments <= 2, (name, sms.text)
        named = [v for k, v in words.items() if k in template.variables]
        assert named and all(word in sms.text for word in named), (name, sms.text)
    # Shown in the language's own script: not the English keywords, but in English itself
    # and in the languages written in Latin letters (Roman Hindi, Roman Santali).
    if not LATIN[lang]:
        assert not any(word.isascii() for word in words.values()), words
