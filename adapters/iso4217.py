"""ISO 4217 currency codes in circulation: the contract suite's money checks and the
gateway's account commands (a top-up in "EUR " or "XXX" is refused) read this one table.

Kept as a literal set (no dependency): the list changes about once a year, and a code
missing here makes the contract (or a top-up) fail loudly rather than let ``"EUR "`` or
``"XXX"`` through.
Precious metals, fund and testing codes (``XAU``, ``XDR``, ``XTS``, ``XXX`` ...) are left out
on purpose: no supplier prices digital goods in them.
"""

from __future__ import annotations

ISO_4217: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL
    BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF
    DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF
    IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR
    LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO
    NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK
    SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH
    UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    ZWL
    """.split()  # noqa: SIM905 - a table is easier to check against the standard
)
