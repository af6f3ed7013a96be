"""lxml: XPath over a parsed document and an XSLT transform (libxml2, libxslt)."""
__deps_dir__ = "deps"

import plugbox

DOC = b"""<shop><item price="3">pen</item><item price="12">book</item><item price="7">mug</item></shop>"""
XSL = b"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="text"/>
<xsl:template match="/"><xsl:for-each select="shop/item[@price &gt; 5]"><xsl:sort select="."/>
<xsl:value-of select="."/>;</xsl:for-each></xsl:template>
</xsl:stylesheet>"""


@plugbox.export
def run():
    from lxml import etree
    doc = etree.fromstring(DOC)
    transform = etree.XSLT(etree.fromstring(XSL))
    return {
        "cheap": doc.xpath("//item[@price < 10]/text()"),
        "total": float(doc.xpath("sum(//item/@price)")),
        "xslt": str(transform(doc)).strip(),
        "html": etree.tostring(etree.HTML("<p>a<b>b</b></p>"), method="html").decode(),
    }
