"""The CSV token alphabet of the tests that build files from every defect kind at every place:
quoted line breaks, broken quotes, bare CRs, tabs, bytes that are not UTF-8, wrong widths,
blank lines. Shared by the property tests and the subtask tests."""

HEADER = b"Id,ChannelType,Address,Attributes.a\n"

TOKENS = [
    b"1,SMS,+12065550100,a\n",
    b"2,EMAIL,a@example.com,b\n",
    b"3,SMS,555,c\n",
    b"x",
    b",",
    b'"',
    b'""',
    b"\n",
    b"\r",
    b"\r\n",
    b"\t",
    b"\xff",
    b"\xc3\xa9",
    b"SMS",
    b"+12065550101",
]
