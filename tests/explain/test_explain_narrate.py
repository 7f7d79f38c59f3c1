"""Narratives say only what the profile supports, stay short, and pass the invention check."""

from __future__ import annotations

import pytest

from prismrec.explain import (
    InterestSummary,
    Narrative,
    NarrativeLimits,
    Narrator,
    ProfileSummary,
    TemplateNarrator,
    check_narrative,
    limit_text,
    prompt_messages,
)

RUN = InterestSummary("running gear · trail · shoes", 5.0, "short",
                      ("Stridex Cushioned Trail Shoes 3", "Pacefield Running Jacket",
                       "Kinetra Hydration Vest", "Tempo Labs Racing Flats"),
                      first_seen=1_600_000_000.0, last_seen=1_610_000_000.0)
COFFEE = InterestSummary("coffee · espresso", 3.0, "long", ("Roastwell Espresso Machine",))
JAZZ = InterestSummary("jazz records · vinyl", 2.0, "long", ())
PROFILE = ProfileSummary((COFFEE, RUN, JAZZ))


def sentences(text: str) -> int:
    return text.count(". ") + 1


def test_template_names_the_main_interest_its_share_and_examples():
    n = TemplateNarrator().narrate(PROFILE)
    assert isinstance(n, Narrative) and n.backend == "template" and n.seconds >= 0
    first = n.text.split(". ")[0]
    assert first == ('Your main interest is running gear · trail · shoes (50%), for example '
                     '"Stridex Cushioned Trail Shoes 3" and "Pacefield Running Jacket"')


def test_template_mentions_the_other_interests_and_their_horizons():
    text = TemplateNarrator().narrate(PROFILE).text
    assert "You also follow coffee · espresso (30%) and jazz records · vinyl (20%)." in text
    assert text.endswith("Lately you have turned to running gear · trail · shoes (since "
                         "2020-09-13), while coffee · espresso and jazz records · vinyl are "
                         "long-standing interests.")
    assert sentences(text) == 3


def test_template_passes_its_own_check():
    n = TemplateNarrator().narrate(PROFILE)
    assert check_narrative(n.text, PROFILE) is None


def test_template_for_one_interest_and_for_none():
    one = TemplateNarrator().narrate(ProfileSummary((COFFEE,))).text
    assert one == ('Your main interest is coffee · espresso (100%), for example '
                   '"Roastwell Espresso Machine". This is a long-standing interest.')
    assert "not enough activity" in TemplateNarrator().narrate(ProfileSummary()).text


def test_template_respects_the_character_limit():
    limits = NarrativeLimits(max_sentences=3, max_chars=120)
    text = TemplateNarrator(limits=limits).narrate(PROFILE).text
    assert 0 < len(text) <= 120


def test_template_narrator_is_a_narrator():
    assert isinstance(TemplateNarrator(), Narrator)


# --- limits -----------------------------------------------------------------------------------


def test_limit_text_keeps_whole_sentences_and_drops_markdown():
    raw = "**You** love running.\n\n- You drink coffee! You like jazz? You read. You cook."
    assert limit_text(raw) == "You love running. You drink coffee! You like jazz?"


def test_limit_text_cuts_one_overlong_sentence_at_a_word():
    text = limit_text("You like " + "very " * 100 + "much.", NarrativeLimits(max_chars=50))
    assert len(text) <= 50 and text.endswith("very…")


def test_limit_text_strips_reasoning_blocks_and_template_tokens():
    assert limit_text("<think>plan the answer</think>You like jazz.<|im_end|>") == \
        "You like jazz."


# --- the invention check ---------------------------------------------------------------------


def test_check_accepts_given_titles_quoted_or_in_part():
    ok = ('You keep coming back to "Roastwell Espresso Machine". Lately the Cushioned Trail '
          'Shoes and other running gear caught your eye.')
    assert check_narrative(ok, PROFILE) is None


def test_check_rejects_a_quoted_title_that_was_not_given():
    why = check_narrative('You run a lot and would love "Moka Master 3000".', PROFILE)
    assert why is not None and "Moka Master 3000" in why


def test_check_rejects_an_invented_title_cased_name():
    why = check_narrative("Your running habit suggests the Barista Supreme Grinder.", PROFILE)
    assert why is not None and "Barista Supreme Grinder" in why


def test_check_rejects_an_invented_camel_case_name():
    why = check_narrative("You like running and the Stripple xCashbox.", PROFILE)
    assert why is not None and "Stripple xCashbox" in why


def test_check_ignores_a_capitalised_first_word_of_a_sentence():
    assert check_narrative("Lately Pacefield Running Jacket shows your running.", PROFILE) is None


def test_check_rejects_empty_off_topic_and_first_person_text():
    assert check_narrative("  ", PROFILE) == "empty output"
    assert "speak to the user" in check_narrative("I love running shoes.", PROFILE)
    assert check_narrative("You are a helpful assistant.", PROFILE) == \
        "does not mention the main interest (running gear · trail · shoes)"
    assert "main interest" in check_narrative("You love coffee and jazz records.", PROFILE)
    assert check_narrative("You love trail running and coffee.", PROFILE) is None


# --- the prompt --------------------------------------------------------------------------------


def test_prompt_carries_labels_shares_horizons_and_at_most_three_titles_per_interest():
    system, user = prompt_messages(PROFILE)
    assert system["role"] == "system" and user["role"] == "user"
    body = user["content"]
    assert body.index("running gear") < body.index("coffee") < body.index("jazz records")
    assert "(50%, recent; e.g. " in body and "(30%, long-standing; e.g. " in body
    for title in RUN.examples[:3] + COFFEE.examples:
        assert f'"{title}"' in body
    assert "Tempo Labs Racing Flats" not in body  # beyond max_examples
    assert "1600000000" not in body and "2020" not in body  # no timestamps


def test_prompt_asks_for_at_most_the_sentence_limit():
    system, _ = prompt_messages(PROFILE, NarrativeLimits(max_sentences=2))
    assert "at most 2 short sentences" in system["content"]


# --- the summary record -----------------------------------------------------------------------


def test_summary_round_trips_through_a_dict():
    assert ProfileSummary.from_dict(PROFILE.to_dict()) == PROFILE


def test_summary_ranks_interests_and_normalises_shares():
    assert [i.label for i in PROFILE.ranked()] == [RUN.label, COFFEE.label, JAZZ.label]
    assert PROFILE.shares() == pytest.approx([0.5, 0.3, 0.2])


def test_bad_interests_are_refused_with_a_message():
    with pytest.raises(ValueError, match="horizon"):
        InterestSummary("x", 1.0, "medium")
    with pytest.raises(ValueError, match="weight"):
        InterestSummary("x", -1.0)
    with pytest.raises(ValueError, match="label"):
        InterestSummary(" ", 1.0)
    with pytest.raises(ValueError, match="list of titles"):
        InterestSummary("x", 1.0, examples="A Title")
