"""Invented message text for the demo store: chit-chat, business leads, traps.

Every function takes a `random.Random` so the output is a pure function of the seed.
The traps are deliberate: lines that look like the lharries `list_messages` header,
pasted chat exports, multi-line text and every Unicode shape a parser trips on.
"""

from __future__ import annotations

import random

FIRST_NAMES = [
    "Ana", "Bruno", "Chidi", "Dagny", "Eitan", "Farah", "Goran", "Hiro", "Ines",
    "Jonas", "Kalani", "Lior", "Maëlle", "Nuno", "Oona", "Priya", "Quentin", "Rafał",
    "Saoirse", "Tomás", "Ulla", "Vikram", "Wren", "Xiadani", "Yusuf", "Zofia",
]
LAST_NAMES = [
    "Abara", "Brandt", "Castellano", "Dufresne", "Eklund", "Fontaine", "Grell",
    "Halvorsen", "Ibarra", "Jovanović", "Kowalczyk", "Lindqvist", "Moreau",
    "Nakamura", "Okafor", "Pellegrini", "Quist", "Rossetti", "Šimková", "Tamm",
]
GROUP_NAMES = [
    "Family 🏡", "Climbing crew", "Real Estate Leads", "Founders Circle",
    "Book club 📚", "Five-a-side ⚽", "Angel Syndicate", "Neighbours Elm Street",
    "Trip to Lisboa ✈️", "Product guild", "مجموعة العمل", "大学同学", "Choir altos",
    "Dev hiring pool", "Allotment swap", "Board games night",
]

SMALL_TALK = [
    "ok", "Ok!", "thanks", "Thanks a lot", "lol", "haha yes", "see you soon",
    "on my way", "running 5 min late, sorry", "did you see the game last night?",
    "sounds good", "what time works for you?", "happy birthday!!", "nice one",
    "can you send me the address?", "I'll call you later", "good morning ☀️",
    "home now", "👍", "😂😂", "❤️", "who's in for Friday?", "same here",
    "Ça marche, merci ! On my way 🚗", "¿Quedamos mañana a las diez?",
    "Danke, bis später", "no worries", "brb", "did it arrive?", "yes", "no",
]
UNICODE = [
    "Ça marche, merci ! Déjà vu à l'hôtel 🏨",
    "👨‍👩‍👧‍👦 family photo day! 👩🏽‍💻 working from the café",
    "مرحبا، كيف حالك؟ see you at 5",
    "שלום! נתראה מחר",
    "我们明天见面吧 🙂 会议在三点",
    "日本語のテキスト、絵文字🍣と一緒に",
    "한국어 메시지 테스트 🎉",
    "Zażółć gęślą jaźń — naïve coöperation",
    "🏳️‍🌈🏴‍☠️🇵🇹🇯🇵 flags galore",
    "tab\tseparated\tvalues and a zero\u200bwidth space",
    "Ελληνικά και русский текст вместе",
]
BUSINESS = [
    "URGENT: can you review the term sheet today?",
    "need this asap, the client is waiting",
    "Looking for a good accountant in Porto, any recommendations?",
    "Can you recommend a lawyer for a lease dispute?",
    "We're raising a seed round, happy to share the investment memo",
    "Our startup just closed pre-seed funding 🎉",
    "We need to hire two backend engineers, know anyone?",
    "Want to buy my old road bike? 300 quid",
    "Selling two concert tickets, face value",
    "Is the deal still on for Thursday?",
    "Could you introduce me to Priya from the fund?",
    "Would love to partner with you on the pilot",
    "Meeting moved to 3pm, same room",
    "Let's set up a meeting with their CTO next week",
    "Any investors here looking at climate startups?",
    "Emergency: our plumber cancelled, can anyone recommend one today?",
    "Looking for a photographer for a wedding in June, budget is flexible",
    "We're hiring a part-time bookkeeper, need help by next month",
    "My cousin's bakery is selling the business, asking 40k, interested?",
    "Need help asap with a Shopify store, paying well",
    "Can you connect me with someone who does commercial leases?",
    "Startup in Lisbon looking for a seed investor, ticket size 50-150k",
    "Anyone want to buy a used espresso machine for the office?",
    "Urgent: need a translator PT-EN for a contract, immediately if possible",
    "Happy to introduce you to our partner at the bank for the funding question",
    "Looking for a co-founder with sales experience, business is growing fast",
    "Can anyone recommend a good web agency? We need to hire one this quarter",
    "Is anyone selling a van? Need to purchase one for deliveries asap",
    "Let's do a meeting on the partnership deal before Friday",
]
MULTILINE = [
    "Shopping list:\n- eggs\n- oat milk\n- 2x bread",
    "Agenda\n1. budget\n2. hiring\n3. AOB",
    "Line one\n\nLine three after a blank line",
    "Address:\n12 Example Road\nLondon\nE1 6AN",
    "ok\nok\nok",
]
HEADER_LOOKALIKES = [
    "[2025-06-30 12:56:01] Chat: Other Chat From: Someone: hi",
    "look what she sent me:\n[2025-03-30 01:15:00] Chat: Family 🏡 From: Me: "
    "ok\n[2025-03-30 01:16:00] From: 447700900123: see you",
    "[2025-01-01 00:00:00] From: Me: happy new year (copied)",
]
PASTED_EXPORTS = [
    "forwarding the thread:\n[30/06/2025, 12:56:01] Ana Brandt: are we still on?\n"
    "[30/06/2025, 12:57:10] Bruno Moreau: yes, 7pm",
    "12/03/2025, 09:14 - Hiro Tamm: meeting moved\n12/03/2025, 09:15 - Ines Quist: ok",
    # iOS exports mark omitted media with a left-to-right mark (U+200E)
    "[3/4/25, 8:01:22 PM] Wren Okafor: \u200eimage omitted\n"
    "[3/4/25, 8:02:01 PM] Wren Okafor: lol",
]
BURST_REPEATS = ["ok", "😂", "?", "hello?", "👍"]


def person_name(rng: random.Random) -> str:
    """An invented 'First Last' name."""
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def text_message(rng: random.Random) -> str:
    """One message body; about 7% carry a business keyword."""
    roll = rng.random()
    if roll < 0.07:
        return rng.choice(BUSINESS)
    if roll < 0.15:
        return rng.choice(MULTILINE)
    if roll < 0.25:
        return rng.choice(UNICODE)
    if roll < 0.265:
        return rng.choice(HEADER_LOOKALIKES)
    if roll < 0.28:
        return rng.choice(PASTED_EXPORTS)
    if roll < 0.33:
        return f"{rng.choice(SMALL_TALK)} {rng.choice(SMALL_TALK)}"
    return rng.choice(SMALL_TALK)
