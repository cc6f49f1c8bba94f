"""Phone numbers to E.164, and the time zone a number most likely rings in.

A campaign must call people in *their* local hours, and a contact list rarely says where each
person is. The number tells a lot: in the North American Numbering Plan the area code names a
region, and many countries keep a single time zone. The table below is deliberately compact:
each NANP area code maps to the zone where most of its subscribers live (a handful of area
codes straddle a zone line; the majority side wins), and only countries with one zone (or one
zone for nearly everyone) are listed. Anything else gets the campaign's default zone, and a
contact's own ``timezone`` column always wins over a guess.

Mobile numbers keep their area code when people move, so the guess can be wrong for them; the
campaign's calling windows should therefore keep a margin (start at 09:00, not 08:00).
"""

from __future__ import annotations

import re

__all__ = ["NANP_ZONES", "COUNTRY_ZONES", "normalize", "zone_for"]

_NANP_BY_ZONE = {
    "America/New_York": (
        "201 202 203 207 212 215 216 220 223 229 234 239 240 248 252 267 272 276 283 301 302 "
        "304 305 313 315 321 326 329 330 332 336 339 347 351 352 363 380 386 401 404 407 410 "
        "412 413 419 423 434 436 440 443 445 448 470 472 475 478 484 502 508 513 516 517 "
        "518 540 551 561 567 570 571 582 585 586 603 606 607 609 610 614 616 617 624 631 640 "
        "646 656 667 678 680 681 689 703 704 706 716 717 718 724 727 732 734 740 743 754 757 "
        "762 770 771 772 774 781 786 802 803 804 810 813 814 826 828 835 838 839 843 845 848 "
        "850 854 856 857 859 860 862 863 864 865 878 904 908 910 912 914 917 919 929 934 937 "
        "941 943 947 948 954 959 973 978 980 984 989"
    ),
    "America/Detroit": "231 269 679 906",
    "America/Indiana/Indianapolis": "260 317 463 574 765 812 930",
    "America/Chicago": (
        "205 210 214 217 218 224 225 228 251 254 256 262 270 274 281 308 309 312 314 316 318 "
        "319 320 325 327 331 334 337 346 361 364 402 405 409 414 417 430 432 447 464 469 479 "
        "501 504 507 512 515 531 534 539 557 563 572 573 580 601 605 608 612 615 618 620 629 630 "
        "636 641 651 659 660 662 682 701 708 712 713 715 726 730 731 737 763 769 773 779 785 "
        "806 815 816 817 830 832 847 870 872 901 903 913 918 920 931 936 938 940 945 952 956 "
        "972 975 979 985 219"
    ),
    "America/Denver": "303 307 385 406 435 505 575 719 720 801 915 970 983",
    "America/Boise": "208 986",
    "America/Phoenix": "480 520 602 623 928",
    "America/Los_Angeles": (
        "206 209 213 253 279 310 323 341 350 360 369 408 415 424 425 442 458 503 509 510 530 "
        "541 559 562 564 619 626 628 650 657 661 669 702 707 714 725 747 760 775 805 818 820 "
        "831 840 858 909 916 925 949 951 971"
    ),
    "America/Anchorage": "907",
    "Pacific/Honolulu": "808",
    "America/Puerto_Rico": "787 939",
    "America/Toronto": (
        "226 249 263 289 343 354 365 367 382 416 418 437 438 450 468 514 519 548 579 581 613 "
        "647 683 705 742 753 807 819 873 905 942"
    ),
    "America/Winnipeg": "204 431 584",
    "America/Regina": "306 474 639",
    "America/Edmonton": "368 403 587 780 825",
    "America/Vancouver": "236 250 604 672 778",
    "America/Halifax": "782 902",
    "America/Moncton": "428 506",
    "America/St_Johns": "709",
}

#: NANP area code -> IANA zone (the majority zone of the area code).
NANP_ZONES: dict[str, str] = {
    code: zone for zone, codes in _NANP_BY_ZONE.items() for code in codes.split()
}

#: Country calling code -> IANA zone, for countries with one zone for (nearly) everyone.
COUNTRY_ZONES: dict[str, str] = {
    "20": "Africa/Cairo", "27": "Africa/Johannesburg", "30": "Europe/Athens",
    "31": "Europe/Amsterdam", "32": "Europe/Brussels", "33": "Europe/Paris",
    "34": "Europe/Madrid", "36": "Europe/Budapest", "39": "Europe/Rome",
    "40": "Europe/Bucharest", "41": "Europe/Zurich", "43": "Europe/Vienna",
    "44": "Europe/London", "45": "Europe/Copenhagen", "46": "Europe/Stockholm",
    "47": "Europe/Oslo", "48": "Europe/Warsaw", "49": "Europe/Berlin", "63": "Asia/Manila",
    "64": "Pacific/Auckland", "65": "Asia/Singapore", "66": "Asia/Bangkok", "81": "Asia/Tokyo",
    "82": "Asia/Seoul", "84": "Asia/Ho_Chi_Minh", "86": "Asia/Shanghai", "90": "Europe/Istanbul",
    "91": "Asia/Kolkata", "234": "Africa/Lagos", "254": "Africa/Nairobi",
    "351": "Europe/Lisbon", "353": "Europe/Dublin", "358": "Europe/Helsinki",
    "420": "Europe/Prague", "852": "Asia/Hong_Kong", "886": "Asia/Taipei",
    "966": "Asia/Riyadh", "971": "Asia/Dubai", "972": "Asia/Jerusalem",
}  # fmt: skip

_PUNCTUATION = re.compile(r"[\s().\-/]")
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
_NANP = re.compile(r"\+1[2-9][0-9]{2}[2-9][0-9]{6}")


def normalize(text: str, default_country_code: str = "1") -> str:
    """``text`` as an E.164 number; ValueError says why it is not a phone number.

    Accepts the ways people write numbers in spreadsheets: ``+1 (312) 555-0170``,
    ``312.555.0170`` (national, completed with ``default_country_code``), ``0044 20 ...``
    (international prefix). NANP numbers are also checked for a valid area code and exchange
    (neither starts with 0 or 1), since those cannot ring anywhere.
    """
    raw = text.strip()
    squeezed = _PUNCTUATION.sub("", raw)
    if not squeezed:
        raise ValueError("no phone number")
    if squeezed.startswith("00"):
        squeezed = "+" + squeezed[2:]
    elif not squeezed.startswith("+"):
        if not squeezed.isdigit():
            raise ValueError(f"{raw!r} is not a phone number")
        if default_country_code == "1" and len(squeezed) == 11 and squeezed.startswith("1"):
            squeezed = "+" + squeezed
        else:
            squeezed = "+" + default_country_code + squeezed.lstrip("0")
    if not _E164.fullmatch(squeezed):
        raise ValueError(f"{raw!r} is not a phone number (E.164 has 8 to 15 digits)")
    if squeezed.startswith("+1") and not _NANP.fullmatch(squeezed):
        raise ValueError(f"{raw!r} is not a valid North American number (+1 NXX NXX XXXX)")
    return squeezed


def zone_for(number: str) -> str | None:
    """The IANA zone an E.164 ``number`` most likely rings in, or None when it can't be told."""
    if number.startswith("+1"):
        return NANP_ZONES.get(number[2:5])
    digits = number[1:]
    for length in (3, 2, 1):
        zone = COUNTRY_ZONES.get(digits[:length])
        if zone is not None:
            return zone
    return None
