"""Pages that never count the whole list (a count grows with the data: a search over a million
file versions, a picker over 100,000 users): each page reads one row more than it shows to know
whether there is a next one, and answers the page-number half of Django's Page, so templates
(includes/pagination.html and the like) use them the same way."""


class UncountedPage:
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1
