"""The rule that turns a variant name into one of the daemon's images (dlbase.image.image_choice).

Outside a project `dlbase run VARIANT` ran the newest image carrying the variant label, from
whatever repository it was in: another project's image of the same name ran instead of the
user's. These pin the rule every verb now shares."""

from __future__ import annotations

import pytest

from dlbase.core.errors import ExitCode
from dlbase.image.image_choice import AmbiguousImage, choose, repository_of

V = "torch2.6-cu124-runtime-debian12"


def img(image_id: str, *tags: str, created: int) -> dict:
    return {"Id": f"sha256:{image_id}", "RepoTags": list(tags) or ["<none>:<none>"], "Created": created}


def test_repository_of_a_tag_keeps_a_registry_port():
    assert repository_of("127.0.0.1:5000/team/pytorch:2.6") == "127.0.0.1:5000/team/pytorch"
    assert repository_of("dlbase/pytorch:2.6-cu124") == "dlbase/pytorch"
    assert repository_of("127.0.0.1:5000/x") == "127.0.0.1:5000/x"  # no tag: the whole name


def test_images_of_two_repositories_are_refused_and_listed():
    summaries = [img("a" * 64, "other/project:2.6", created=300), img("b" * 64, "dlbase/pytorch:2.6", created=100)]
    with pytest.raises(AmbiguousImage) as info:
        choose(V, summaries)
    err = info.value
    assert err.exit_code == ExitCode.INVALID_INPUT
    assert err.details == [f"other/project:2.6 ({'a' * 12})", f"dlbase/pytorch:2.6 ({'b' * 12})"]  # newest first
    assert "2 repositories" in err.message and V in err.message and "image ID" in err.hint


def test_the_matrix_repository_wins_over_a_newer_stranger():
    summaries = [img("a" * 64, "other/project:2.6", created=300), img("b" * 64, "dlbase/pytorch:2.6-x", created=100),
                 img("c" * 64, "dlbase/pytorch:2.6-old", created=50)]
    chosen = choose(V, summaries, preferred="dlbase/pytorch")
    assert (chosen.ref, chosen.image_id) == ("dlbase/pytorch:2.6-x", "sha256:" + "b" * 64)
    assert "matrix's repository dlbase/pytorch" in chosen.why


def test_strangers_only_are_still_refused_with_a_project():
    summaries = [img("a" * 64, "one/x:1", created=3), img("b" * 64, "two/y:1", created=2)]
    with pytest.raises(AmbiguousImage, match="none is in the matrix's repository dlbase/pytorch"):
        choose(V, summaries, preferred="dlbase/pytorch")


def test_one_repository_gives_its_newest_image_and_says_so():
    summaries = [img("a" * 64, "127.0.0.1:5000/team/pt:old", created=1),
                 img("b" * 64, "127.0.0.1:5000/team/pt:new", created=2)]
    chosen = choose(V, summaries, preferred="dlbase/pytorch")
    assert chosen.ref == "127.0.0.1:5000/team/pt:new"
    assert "the only repository" in chosen.why and "dlbase/pytorch holds none" in chosen.why


def test_an_image_tagged_into_two_repositories_is_not_ambiguous():
    """A push tags the image into the registry's repository too: one image, no question."""
    one = img("a" * 64, "dlbase/pytorch:2.6", "127.0.0.1:5000/dlbase/pytorch:2.6", created=5)
    assert choose(V, [one]).image_id == "sha256:" + "a" * 64
    older = img("b" * 64, "127.0.0.1:5000/dlbase/pytorch:2.5", created=1)  # only in the registry's
    chosen = choose(V, [one, older])
    assert chosen.ref == "127.0.0.1:5000/dlbase/pytorch:2.6"  # the repository holding both, newest first


def test_untagged_images_count_only_when_nothing_is_tagged():
    tagged = img("a" * 64, "me/pt:1", created=1)
    untagged = img("b" * 64, created=9)
    assert choose(V, [untagged, tagged]).ref == "me/pt:1"
    alone = choose(V, [untagged, img("c" * 64, created=2)])
    assert alone.ref == "sha256:" + "b" * 64 and "untagged" in alone.why


def test_no_image_of_the_variant_is_none():
    assert choose(V, []) is None
    assert choose(V, [], preferred="dlbase/pytorch") is None


def test_many_repositories_are_listed_up_to_a_bound():
    summaries = [img(f"{i:064x}", f"r{i}/x:1", created=i) for i in range(8)]
    with pytest.raises(AmbiguousImage) as info:
        choose(V, summaries)
    assert len(info.value.details) == 6 and info.value.details[-1] == "and 3 more"
    # newest first: the repositories just built are shown, the oldest are the ones counted
    assert [d.split(" ")[0] for d in info.value.details[:5]] == [f"r{i}/x:1" for i in (7, 6, 5, 4, 3)]
